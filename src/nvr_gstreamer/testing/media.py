"""What a player sees in a recording: ffprobe, as a user's tools would read it."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
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
