"""The browser live view's server side on a real pipeline: fragmented MP4 from the camera's
tee, without decoding, for any number of viewers; a viewer coming back starts at once, whatever
the camera's GOP; nothing runs while nobody watches."""

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
from nvr_gstreamer.simulator.model import Codec
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


def _played(viewer: Viewer, path: Path) -> tuple[str, int, int]:
    """What a player makes of what the viewer got so far, written to ``path`` as one file:
    (codec, frames decoded, frames sent)."""
    data, sent = viewer.mp4()
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    codec, count = out.split(",")
    return codec, int(count), sent


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
    codec, count, sent = _played(second, tmp_path / "live.mp4")
    assert codec == "h264" and count == sent
    runtime = engine.runtimes["cam1"]
    engine.remove_web_viewer("cam1", token)
    assert engine.loop.call_sync(lambda: runtime.web.awake)  # one still watches
    engine.remove_web_viewer("cam1", other)
    wait_until(lambda: not engine.loop.call_sync(lambda: runtime.web.awake), 5, "asleep")
    n = len(second.fragments())
    time.sleep(0.5)
    assert len(second.fragments()) == n  # nothing is produced for nobody


GOP_S = 3


def _view(engine: CameraEngine, path: Path) -> float:
    """Watch until a GOP and more came; returns how long the first frame took. The video is an
    MP4 a player reads whole: it began at a keyframe."""
    web = engine.runtimes["cam1"].web
    # Nobody watches: the sleeping branch keeps more than a GOP of video, in C.
    wait_until(lambda: engine.loop.call_sync(web.backlog) > (GOP_S + 0.5) * FPS, 10, "kept")
    viewer = Viewer()
    asked = time.monotonic()
    token = engine.add_web_viewer("cam1", viewer)
    wait_until(lambda: len(viewer.fragments()) >= 1, GOP_S + 5, "the first frame")
    first = next(t for t, p in viewer.pieces if isinstance(p, Fragment))
    assert isinstance(viewer.pieces[0][1], InitSegment) and viewer.fragments()[0].key
    # Only the current GOP came at once (not all the video kept), then live frames.
    at_once = [p for t, p in viewer.pieces if t - first < 0.05]
    assert len(at_once) <= 1 + GOP_S * FPS + 1, len(at_once)
    wait_until(lambda: len(viewer.fragments()) >= GOP_S * FPS + 5, GOP_S + 10, "frames")
    _codec, count, sent = _played(viewer, path)
    assert count == sent
    engine.remove_web_viewer("cam1", token)
    wait_until(lambda: not engine.loop.call_sync(lambda: web.awake), 5, "asleep")
    return first - asked


def test_a_first_viewer_starts_at_once_from_the_newest_keyframe_with_a_long_gop(
    tmp_path: Path,
) -> None:
    with SimulatorProcess(cameras=1, fps=FPS, gop_seconds=GOP_S) as sim:
        engine = CameraEngine(engine_config({"cam1": sim.url("cam1")}))
        watch = EngineWatch(engine)
        engine.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 15)
            for n in range(3):  # the first viewer, and each first one after everybody left
                took = _view(engine, tmp_path / f"view{n}.mp4")
                assert took < 0.5, took
            assert engine.status("cam1").stalls == 0  # the sleeping branch never held it up
        finally:
            engine.stop()


def test_a_camera_with_an_h264_live_url_is_watched_from_it(tmp_path: Path) -> None:
    """The classic set-up: an H.265 main stream (recorded), an H.264 sub-stream for viewing."""
    with SimulatorProcess(
        cameras=2, fps=FPS, gop_seconds=1.0, camera_codecs={"cam1": Codec.H265}
    ) as sim:
        config = engine_config({"cam1": sim.url("cam1")})
        camera = config.cameras[0].model_copy(update={"live_url": sim.url("cam2")})
        engine = CameraEngine(config.model_copy(update={"cameras": [camera]}))
        watch = EngineWatch(engine)
        engine.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 15)
            assert engine.status("cam1").codec == "h265"
            viewer = Viewer()
            token = engine.add_web_viewer("cam1", viewer)
            wait_until(lambda: len(viewer.fragments()) >= FPS, 10, "a second of video")
            init = viewer.pieces[0][1]
            assert isinstance(init, InitSegment) and init.codec.startswith("avc1.")
            web = engine.runtimes["cam1"].web
            assert engine.loop.call_sync(lambda: web.source) == "live_url"
            # The sub-stream failing never disturbs the camera; it is retried and comes back.
            sim.stop("cam2")  # its connections closed: the sub-stream ends
            wait_until(lambda: engine.loop.call_sync(lambda: web.source) is None, 10, "ended")
            seen = len(viewer.fragments())
            sim.resume("cam2")
            wait_until(lambda: len(viewer.fragments()) >= seen + FPS, 15, "the sub-stream again")
            status = engine.status("cam1")
            assert status.state is CameraState.STREAMING and status.stalls == 0
            engine.remove_web_viewer("cam1", token)
        finally:
            engine.stop()
