"""The browser live view's bookkeeping (loop thread) on fake media and a fake clock: a branch
while someone watches and for a while after, so a viewer coming back starts at once."""

from __future__ import annotations

import logging
from typing import Any

from nvr_gstreamer.camera.fmp4 import Fragment, InitSegment, Piece
from nvr_gstreamer.camera.media import PipelineSpec
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.engine.live_view import LIVE_RETRY_S
from nvr_gstreamer.engine.web_view import LINGER_S, WebView
from nvr_gstreamer.testing.fake_media import FakeMedia, FakeScheduler, FakeWebBranch


class Pipeline:
    def __init__(self) -> None:
        self.attached: list[Any] = []
        self.detached: list[Any] = []

    def attach(self, branch: Any) -> None:
        self.attached.append(branch)

    def detach(self, branch: Any) -> None:
        self.detached.append(branch)


def make(codec: str = "h264") -> tuple[WebView, FakeScheduler, FakeMedia, Pipeline]:
    scheduler = FakeScheduler(FakeClock())
    media = FakeMedia(scheduler)
    log = CameraLogger(logging.getLogger("test"), "cam1")
    web = WebView(media, scheduler, log)  # type: ignore[arg-type]
    pipeline = Pipeline()
    web.pipeline_streaming(pipeline, codec)
    return web, scheduler, media, pipeline


def stream(branch: FakeWebBranch, frames: int, key_every: int = 3) -> None:
    branch.deliver(InitSegment(b"init", "avc1.640028"))
    for n in range(frames):
        branch.deliver(Fragment(bytes([n]), key=n % key_every == 0))


class Viewer:
    def __init__(self) -> None:
        self.got: list[Piece] = []
        self.caught_up: int | None = None

    def __call__(self, piece: Piece) -> bool:
        self.got.append(piece)
        return True

    def done(self, n: int) -> None:
        self.caught_up = n


def test_no_branch_until_someone_watches() -> None:
    web, _, media, pipeline = make()
    assert media.web_branches == [] and not web.attached
    web.add_viewer(Viewer())
    assert pipeline.attached == media.web_branches and web.attached


def test_a_viewer_coming_back_within_the_linger_starts_from_the_current_gop() -> None:
    web, scheduler, media, pipeline = make()
    first = Viewer()
    token = web.add_viewer(first)
    (branch,) = media.web_branches
    stream(branch, 8)  # keyframes 0, 3, 6
    web.remove_viewer(token)
    scheduler.run(LINGER_S - 1)
    assert web.attached and pipeline.detached == []
    back = Viewer()
    web.add_viewer(back, back.done)
    assert [p.data for p in back.got] == [b"init", bytes([6]), bytes([7])]
    assert back.caught_up == 3
    scheduler.run(2 * LINGER_S)
    assert web.attached  # still watched: the linger was called off


def test_the_branch_goes_after_the_linger_and_nothing_runs_for_nobody() -> None:
    web, scheduler, media, pipeline = make()
    token = web.add_viewer(Viewer())
    (branch,) = media.web_branches
    web.remove_viewer(token)
    scheduler.run(LINGER_S)
    assert pipeline.detached == [branch] and not web.attached
    late = Viewer()
    web.add_viewer(late)  # a new branch; the old stream's GOP was forgotten
    assert late.got == [] and len(media.web_branches) == 2


def test_viewers_waiting_for_the_camera_get_the_next_stream() -> None:
    web, scheduler, media, pipeline = make()
    viewer = Viewer()
    web.add_viewer(viewer)
    stream(media.web_branches[0], 2)
    web.pipeline_going()
    web.pipeline_streaming(pipeline, "h264")  # the camera is back: a new branch
    _old, new = media.web_branches
    assert pipeline.attached == [_old, new]
    stream(new, 2)
    assert [p.data for p in viewer.got] == [b"init", b"\x00", b"\x01", b"init", b"\x00", b"\x01"]


def test_a_failed_branch_is_replaced_and_viewers_stay() -> None:
    web, scheduler, media, pipeline = make()
    viewer = Viewer()
    web.add_viewer(viewer)
    (old,) = media.web_branches
    web.rebuild()
    new = media.web_branches[-1]
    assert pipeline.detached == [old] and pipeline.attached == [old, new]
    stream(new, 1)
    assert [p.data for p in viewer.got] == [b"init", b"\x00"]


def test_no_branch_for_a_codec_the_browser_path_cannot_carry() -> None:
    web, _, media, _ = make("mjpeg")
    web.add_viewer(Viewer())
    assert media.web_branches == [] and not web.attached


def make_sub() -> tuple[WebView, FakeScheduler, FakeMedia, Pipeline, list[int]]:
    scheduler = FakeScheduler(FakeClock())
    media = FakeMedia(scheduler)
    failures: list[int] = []
    spec = PipelineSpec(camera_id="cam1", url="rtsp://cam/sub", credentials=None)
    log = CameraLogger(logging.getLogger("test"), "cam1")
    web = WebView(media, scheduler, log, spec, on_failed=lambda: failures.append(1))  # type: ignore[arg-type]
    pipeline = Pipeline()
    web.pipeline_streaming(pipeline, "h265", "udp")
    return web, scheduler, media, pipeline, failures


def test_a_camera_with_a_live_url_is_watched_from_its_sub_stream() -> None:
    web, scheduler, media, pipeline, _ = make_sub()
    viewer = Viewer()
    token = web.add_viewer(viewer)
    (stream,) = media.web_streams
    assert stream.started and stream.spec.url == "rtsp://cam/sub"
    assert stream.spec.transport == "udp"  # the way the main stream works
    assert pipeline.attached == [] and web.source == "live_url"
    stream.deliver(InitSegment(b"init", "avc1.640028"))
    stream.deliver(Fragment(b"k", key=True))
    assert [p.data for p in viewer.got] == [b"init", b"k"]
    web.remove_viewer(token)
    scheduler.run(LINGER_S)
    assert stream.released and not web.attached


def test_a_failed_sub_stream_is_retried_while_someone_watches() -> None:
    web, scheduler, media, _, failures = make_sub()
    viewer = Viewer()
    web.add_viewer(viewer)
    (first,) = media.web_streams
    first.on_failed("404")
    assert failures == [1] and not web.attached
    scheduler.run(LIVE_RETRY_S)
    assert len(media.web_streams) == 2 and media.web_streams[1].started


def test_the_main_pipeline_going_closes_the_sub_stream_and_no_retry_follows() -> None:
    web, scheduler, media, pipeline, _ = make_sub()
    web.add_viewer(Viewer())
    (stream,) = media.web_streams
    stream.on_failed("timeout")
    web.pipeline_going()
    scheduler.run(2 * LIVE_RETRY_S)
    assert len(media.web_streams) == 1
    web.pipeline_streaming(pipeline, "h265")
    assert len(media.web_streams) == 2
    web.pipeline_going()
    assert media.web_streams[1].released
