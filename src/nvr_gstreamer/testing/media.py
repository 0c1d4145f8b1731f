"""What a player sees in a recording: ffprobe, as a user's tools would read it."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path


@dataclass(frozen=True, slots=True)
class MediaFacts:
    frames: int
    duration_s: float | None  # from the container; None when it has none (crash leftovers)
    first_is_keyframe: bool
    codec: str | None


def probe(path: Path, timeout_s: float = 60.0) -> MediaFacts:
    """Count frames with ffprobe; raises CalledProcessError if ffprobe cannot read the file."""
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
            "-show_entries", "stream=nb_read_frames,codec_name:format=duration",
            "-of", "json", str(path),
        ],
        capture_output=True, text=True, timeout=timeout_s, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    stream = (data.get("streams") or [{}])[0]
    duration = data.get("format", {}).get("duration")
    first = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
            "-show_entries", "frame=key_frame", "-of", "csv=p=0", str(path),
        ],
        capture_output=True, text=True, timeout=timeout_s, check=True,
    )  # fmt: skip
    return MediaFacts(
        frames=int(stream.get("nb_read_frames") or 0),
        duration_s=float(duration) if duration not in (None, "N/A") else None,
        first_is_keyframe=first.stdout.strip().startswith("1"),
        codec=stream.get("codec_name"),
    )


@dataclass(frozen=True, slots=True)
class Regularity:
    frames: int
    step_sd_ms: float  # standard deviation of frame-to-frame PTS steps
    largest_step_s: float
    repeated_or_backwards: int  # steps of zero or less


def video_pts(path: Path, timeout_s: float = 60.0) -> list[float]:
    """The video packets' PTS in file order, as ffprobe reads them."""
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v:0",
            "-show_entries", "packet=pts_time", "-of", "csv=p=0", str(path),
        ],
        capture_output=True, text=True, timeout=timeout_s, check=True,
    )  # fmt: skip
    return [float(line) for line in out.stdout.split() if line not in ("", "N/A")]


def regularity(path: Path) -> Regularity:
    """How regular a recording's frame timestamps are (a camera without B-frames)."""
    pts = video_pts(path)
    steps = [b - a for a, b in pairwise(pts)]
    if not steps:
        return Regularity(len(pts), 0.0, 0.0, 0)
    mean = sum(steps) / len(steps)
    sd = (sum((s - mean) ** 2 for s in steps) / len(steps)) ** 0.5
    return Regularity(len(pts), sd * 1000, max(steps), sum(1 for s in steps if s <= 0))
