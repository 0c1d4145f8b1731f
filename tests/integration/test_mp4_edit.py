"""storage/mp4_edit.py on real MP4 files made by mp4mux, checked with ffprobe/ffmpeg: the
trimmed file shows the frame on screen at the requested start first, lasts the requested
range, keeps every sample byte, and keeps audio and video together. Hypothesis draws the
ranges; a few seconds in all."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvr_gstreamer.storage.mp4_edit import Mp4EditError, read_tracks, trim

pytestmark = pytest.mark.integration

FPS = 25
SECONDS = 3
VIDEO = (
    f"videotestsrc num-buffers={FPS * SECONDS} ! video/x-raw,width=160,height=120,framerate={FPS}/1"
    " ! x264enc key-int-max=25 speed-preset=ultrafast {x264} ! h264parse ! queue ! m."
)
# 100 ms buffers of AAC, starting late: mp4mux writes an empty edit for the audio.
AUDIO = (
    " audiotestsrc num-buffers=30 samplesperbuffer=1600 timestamp-offset=40000000"
    " ! audio/x-raw,rate=16000,channels=1 ! avenc_aac ! aacparse ! queue ! m."
)
KINDS = {
    # moov after mdat (mp4mux's default), audio 40 ms late
    "av": ("", "bframes=0", AUDIO),
    # B-frames: mp4mux's edit list starts the video at its composition delay
    "bframes": ("", "bframes=2", ""),
    # moov before mdat: chunk offsets move with moov's growth
    "faststart": ("faststart=true", "bframes=0", AUDIO),
}


def make_mp4(path: Path, mux: str, x264: str, audio: str) -> Path:
    desc = f"mp4mux {mux} name=m ! filesink location={path} " + VIDEO.format(x264=x264) + audio
    subprocess.run(["gst-launch-1.0", "-q", *desc.split()], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    folder = tmp_path_factory.mktemp("mp4")
    yield {k: make_mp4(folder / f"{k}.mp4", *args) for k, args in KINDS.items()}


def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def shown_frames(path: Path) -> list[float]:
    """Presentation times of the video frames a player shows (ffmpeg honours edit lists)."""
    data = ffprobe(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time")
    return sorted(float(f["pts_time"]) for f in data["frames"])


@functools.cache
def _frames_of(source: Path) -> list[float]:
    return shown_frames(source)


def stream_facts(path: Path) -> dict[str, dict[str, float]]:
    data = ffprobe(path, "-show_entries", "stream=codec_type,start_time,duration")
    return {
        s["codec_type"]: {"start": float(s["start_time"]), "duration": float(s["duration"])}
        for s in data["streams"]
    }


def mdat(path: Path) -> bytes:
    data = path.read_bytes()
    i = 0
    while i < len(data):
        size, kind = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8]
        if kind == b"mdat":
            return data[i + 8 : i + size]
        i += size
    raise AssertionError("no mdat")


def decode_errors(path: Path) -> str:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    ).stderr  # fmt: skip


@pytest.mark.parametrize("kind", list(KINDS))
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.fractions(0, Fraction(27, 10)).map(lambda f: f.limit_denominator(1000)),
    length=st.fractions(Fraction(1, 10), 3).map(lambda f: f.limit_denominator(1000)),
)
def test_a_trimmed_file_starts_with_the_frame_on_screen_and_lasts_the_range(
    sources: dict[str, Path], tmp_path: Path, kind: str, start: Fraction, length: Fraction
) -> None:
    source = sources[kind]
    end = min(start + length, Fraction(SECONDS))
    dest = tmp_path / f"{kind}-{start}-{end}.mp4".replace("/", "_")
    shutil.copy(source, dest)
    before = _frames_of(source)
    cut = trim(dest, start, end)

    frames = shown_frames(dest)
    interval = 1 / FPS
    # The first frame shown is the one on screen at the start (the latest at or before it).
    on_screen = max(t for t in before if t <= float(start) + 0.001) - before[0]
    assert abs(float(cut.start_s) - on_screen) < 0.001
    assert frames[0] == pytest.approx(0.0, abs=0.001)
    assert -0.001 <= float(start) - float(cut.start_s) < interval  # 1 ms of rounding allowed
    # Every frame shown is an original frame, moved by the cut; none missing up to the end
    # (a frame within a millisecond of the end may or may not be shown).
    wanted = float(end - cut.start_s)
    moved = [t - before[0] - float(cut.start_s) for t in before]
    sure = [t for t in moved if -0.0005 < t < wanted - 0.001]
    maybe = [t for t in moved if abs(t - wanted) <= 0.001]
    assert frames[: len(sure)] == pytest.approx(sure, abs=0.0015)
    assert len(sure) <= len(frames) <= len(sure) + len(maybe)
    # It lasts the range from that frame, video and audio alike.
    facts = stream_facts(dest)
    assert float(cut.duration_s) == pytest.approx(wanted, abs=0.001)
    assert facts["video"]["duration"] == pytest.approx(wanted, abs=interval)
    if "audio" in facts:
        old = stream_facts(source)["audio"]
        late = max(0.0, old["start"] - float(cut.start_s))  # a late track stays late
        assert facts["audio"]["start"] == pytest.approx(late, abs=0.002)
    # No sample byte changed; ffmpeg decodes it cleanly.
    assert mdat(dest) == mdat(source)
    assert decode_errors(dest) == ""


def test_the_edit_lists_written(sources: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "av.mp4"
    shutil.copy(sources["av"], dest)
    movie_ts, before = read_tracks(dest)
    video, audio = before
    assert audio.edits is not None and audio.edits[0].media_time == -1  # mp4mux: late audio
    cut = trim(dest, Fraction(1, 2), Fraction(2))
    _ts, after = read_tracks(dest)
    v, a = after
    assert cut.start_s == Fraction(12, 25)  # the frame on screen at 0.5 s (25 fps)
    assert v.edits is not None and len(v.edits) == 1
    assert v.edits[0].media_time == video.timescale * 12 // 25
    assert v.edits[0].duration == round(Fraction(38, 25) * movie_ts) == v.tkhd_duration
    # Past the audio's late start: a single edit, 0.48 - 0.04 s into its media.
    assert a.edits is not None and len(a.edits) == 1
    assert a.edits[0].media_time == pytest.approx((0.48 - 0.04) * audio.timescale, abs=1)
    # The sample tables are those of before.
    assert (v.timescale, v.media_duration) == (video.timescale, video.media_duration)


def test_fragmented_mp4_is_refused(tmp_path: Path) -> None:
    path = make_mp4(tmp_path / "frag.mp4", "fragment-duration=500", "bframes=0", "")
    data = path.read_bytes()
    with pytest.raises(Mp4EditError, match="fragmented"):
        trim(path, Fraction(1, 2), Fraction(2))
    assert path.read_bytes() == data
