"""The browser live view's server side on a real pipeline: fragmented MP4 from the camera's
tee, without decoding, written by the live sink to each viewer's socket; a viewer starts at
once, whatever the camera's GOP; a viewer leaving gets its socket closed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvr_gstreamer.camera.supervisor import CameraState
from nvr_gstreamer.engine.engine import CameraEngine
from nvr_gstreamer.simulator.model import Codec
from nvr_gstreamer.simulator.process import SimulatorProcess
from nvr_gstreamer.testing.engine import EngineWatch, engine_config, wait_until
from nvr_gstreamer.testing.live_viewer import SocketViewer, is_key, played

pytestmark = pytest.mark.integration

FPS = 15


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


def test_viewers_get_playable_fragmented_mp4_and_their_sockets_closed_when_they_leave(
    engine: CameraEngine, tmp_path: Path
) -> None:
    with SocketViewer() as first, SocketViewer() as second:
        token = engine.add_web_viewer("cam1", first.give())
        wait_until(lambda: len(first.fragments()) >= 2 * FPS, 10, "two seconds of video")
        assert first.codecs()[0].startswith("avc1.")
        assert is_key(first.fragments()[0].message.data)
        # A second viewer starts at once, from the current GOP (no wait for a keyframe).
        asked = time.monotonic()
        other = engine.add_web_viewer("cam1", second.give())
        wait_until(lambda: len(second.fragments()) >= 1, 5, "the second viewer's first frame")
        assert second.fragments()[0].at - asked < 0.2
        assert is_key(second.fragments()[0].message.data)
        wait_until(lambda: len(second.fragments()) >= FPS, 5, "a second of video")
        # What a viewer got is an MP4 a player reads: every frame there.
        codec, count, sent = played(second, tmp_path / "live.mp4")
        assert codec == "h264" and count == sent
        engine.remove_web_viewer("cam1", token)
        wait_until(lambda: not first.reading, 5, "the first viewer's socket closed")
        n = len(second.fragments())
        wait_until(lambda: len(second.fragments()) > n + FPS // 2, 5, "the other still watching")
        assert second.reading
        engine.remove_web_viewer("cam1", other)
        wait_until(lambda: not second.reading, 5, "the second viewer's socket closed")
        web = engine.runtimes["cam1"].web
        assert engine.loop.call_sync(lambda: web.source) == "main"  # kept, for the next viewer


GOP_S = 3


def _view(engine: CameraEngine, path: Path) -> float:
    """Watch until a GOP and more came; returns how long the first frame took. The video is an
    MP4 a player reads whole: it began at a keyframe."""
    with SocketViewer() as viewer:
        asked = time.monotonic()
        token = engine.add_web_viewer("cam1", viewer.give())
        wait_until(lambda: len(viewer.fragments()) >= 1, GOP_S + 5, "the first frame")
        first = viewer.fragments()[0]
        assert is_key(first.message.data)
        # Only the current GOP came at once, then live frames.
        at_once = [g for g in viewer.fragments() if g.at - first.at < 0.05]
        assert len(at_once) <= GOP_S * FPS + 1, len(at_once)
        wait_until(lambda: len(viewer.fragments()) >= GOP_S * FPS + 5, GOP_S + 10, "frames")
        _codec, count, sent = played(viewer, path)
        assert count == sent
        engine.remove_web_viewer("cam1", token)
        return first.at - asked


def test_a_first_viewer_starts_at_once_from_the_newest_keyframe_with_a_long_gop(
    tmp_path: Path,
) -> None:
    with SimulatorProcess(cameras=1, fps=FPS, gop_seconds=GOP_S) as sim:
        engine = CameraEngine(engine_config({"cam1": sim.url("cam1")}))
        watch = EngineWatch(engine)
        engine.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 15)
            # The camera well into a GOP: a viewer waiting for the next keyframe would show it.
            frames = engine.status("cam1").frames
            wait_until(lambda: engine.status("cam1").frames >= frames + GOP_S * FPS, 10, "a GOP")
            for n in range(3):  # the first viewer, and each first one after everybody left
                took = _view(engine, tmp_path / f"view{n}.mp4")
                assert took < 0.5, took
            assert engine.status("cam1").stalls == 0  # the sink never held the camera up
        finally:
            engine.stop()


def test_a_camera_with_an_h264_live_url_is_watched_from_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The classic set-up: an H.265 main stream (recorded), an H.264 sub-stream for viewing.
    A sub-stream that ends, or goes silent with its connection open, is tried again."""
    with SimulatorProcess(
        cameras=2, fps=FPS, gop_seconds=1.0, camera_codecs={"cam1": Codec.H265}
    ) as sim:
        config = engine_config({"cam1": sim.url("cam1")}, stall_timeout_seconds=2)
        camera = config.cameras[0].model_copy(update={"live_url": sim.url("cam2")})
        engine = CameraEngine(config.model_copy(update={"cameras": [camera]}))
        watch = EngineWatch(engine)
        engine.start()
        try:
            watch.wait_for("cam1", CameraState.STREAMING, 15)
            assert engine.status("cam1").codec == "h265"
            with SocketViewer() as viewer:
                token = engine.add_web_viewer("cam1", viewer.give())
                wait_until(lambda: len(viewer.fragments()) >= FPS, 10, "a second of video")
                assert viewer.codecs()[0].startswith("avc1.")
                web = engine.runtimes["cam1"].web
                assert engine.loop.call_sync(lambda: web.source) == "live_url"
                # The sub-stream failing never disturbs the camera; it is retried and comes
                # back, as a new stream (a new init) on the same socket.
                sim.stop("cam2")  # its connections closed: the sub-stream ends
                wait_until(lambda: engine.loop.call_sync(lambda: web.source) is None, 10, "ended")
                seen = len(viewer.fragments())
                sim.resume("cam2")
                wait_until(
                    lambda: len(viewer.fragments()) >= seen + FPS, 15, "the sub-stream again"
                )
                assert len(viewer.codecs()) == 2 and viewer.reading
                _codec, count, sent = played(viewer, tmp_path / "again.mp4")
                assert count == sent
                # Silent with its connection open (rtspsrc alone would say so after ~27 s):
                # closed after the stall timeout and tried again, on the same socket.
                frozen = time.monotonic()
                sim.freeze("cam2")
                try:
                    wait_until(
                        lambda: "browser live view (live_url) failed: no video" in caplog.text,
                        10,
                        "the stall noticed",
                    )
                    noticed = time.monotonic() - frozen
                    print(f"web sub-stream stall noticed {noticed:.2f} s after the freeze")
                    assert noticed <= 2 + 2.5  # the stall timeout, two 0.5 s polls, and load
                finally:
                    sim.resume("cam2")
                seen = len(viewer.fragments())
                wait_until(
                    lambda: len(viewer.fragments()) >= seen + FPS, 20, "the sub-stream after it"
                )
                assert len(viewer.codecs()) == 3 and viewer.reading
                status = engine.status("cam1")
                assert status.state is CameraState.STREAMING and status.stalls == 0
                engine.remove_web_viewer("cam1", token)
        finally:
            engine.stop()
