"""The browser live view's server side on a real pipeline: fragmented MP4 from the camera's
tee, without decoding, for any number of viewers; nothing runs while nobody watches."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvr_gstreamer.camera.fmp4 import Fragment, InitSegment, Piece
from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.engine.engine import CameraEngine
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until

pytestmark = pytest.mark.integration

FPS = 15


class Viewer:
    def __init__(self) -> None:
        self.pieces: list[tuple[float, Piece]] = []
        self.lock = threading.Lock()

    def __call__(self, piece: Piece) -> bool:
        with self.lock:
            self.pieces.append((time.monotonic(), piece))
        return True

    def fragments(self) -> list[Fragment]:
        with self.lock:
            return [p for _t, p in self.pieces if isinstance(p, Fragment)]

    def mp4(self) -> tuple[bytes, int]:
        """What it got so far as one file, and how many frames that is."""
        with self.lock:
            frames = sum(1 for _t, p in self.pieces if isinstance(p, Fragment))
            return b"".join(p.data for _t, p in self.pieces), frames


@pytest.fixture
def engine() -> Iterator[CameraEngine]:
    with SimulatorProcess(cameras=1, fps=FPS, gop_seconds=1.0) as sim:
        eng = CameraEngine(engine_config({"cam1": sim.url("cam1")}))
        watch = EngineWatch(eng)
        eng.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 15)
            yield eng
        finally:
            eng.stop()


def test_viewers_get_playable_fragmented_mp4_and_the_branch_goes_with_the_last(
    engine: CameraEngine, tmp_path: Path
) -> None:
    first = Viewer()
    token = engine.add_web_viewer("cam1", first)
    wait_until(lambda: len(first.fragments()) >= 2 * FPS, 10, "two seconds of video")
    inits = [p for _t, p in first.pieces if isinstance(p, InitSegment)]
    assert inits and inits[0].codec.startswith("avc1.")
    assert isinstance(first.pieces[0][1], InitSegment) and first.fragments()[0].key
    # A second viewer starts at once, from the current GOP (no wait for a keyframe).
    second = Viewer()
    asked = time.monotonic()
    other = engine.add_web_viewer("cam1", second)
    wait_until(lambda: len(second.fragments()) >= 1, 5, "the second viewer's first frame")
    assert second.pieces[0][0] - asked < 0.2 and second.fragments()[0].key
    wait_until(lambda: len(second.fragments()) >= FPS, 5, "a second of video")
    # What a viewer got is an MP4 a player reads: every frame there.
    path = tmp_path / "live.mp4"
    data, sent = second.mp4()
    path.write_bytes(data)
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames,codec_name", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    codec, count = frames.split(",")
    assert codec == "h264" and int(count) == sent
    runtime = engine.runtimes["cam1"]
    engine.remove_web_viewer("cam1", token)
    assert engine.loop.call_sync(lambda: runtime.web.attached)  # one still watches
    engine.remove_web_viewer("cam1", other)
    wait_until(lambda: not engine.loop.call_sync(lambda: runtime.web.attached), 5, "detach")
    n = len(second.fragments())
    time.sleep(0.5)
    assert len(second.fragments()) == n  # nothing is produced for nobody
