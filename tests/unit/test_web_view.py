"""The browser live view's bookkeeping (loop thread) on fake media and a fake clock: the main
stream's branch sleeps while nobody watches, a first viewer wakes it and joins once the kept
video is through, the last one leaving puts it back to sleep; a live_url sub-stream runs while
someone watches and a while after."""

from __future__ import annotations

import logging

from nvr_gstreamer.camera.fmp4 import Fragment, InitSegment, Piece
from nvr_gstreamer.camera.media import PipelineSpec
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.engine.live_view import LIVE_RETRY_S
from nvr_gstreamer.engine.web_view import DRAIN_MAX_POLLS, DRAIN_POLL_S, LINGER_S, WebView
from nvr_gstreamer.testing.fake_media import FakeBranchHost, FakeMedia, FakeScheduler, FakeWebBranch


def make(codec: str = "h264") -> tuple[WebView, FakeScheduler, FakeMedia, FakeBranchHost]:
    scheduler = FakeScheduler(FakeClock())
    media = FakeMedia(scheduler)
    log = CameraLogger(logging.getLogger("test"), "cam1")
    web = WebView(media, scheduler, log)  # type: ignore[arg-type]
    pipeline = FakeBranchHost()
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


def test_the_branch_is_attached_asleep_and_a_viewer_joins_once_the_kept_video_is_through() -> None:
    web, scheduler, media, pipeline = make()
    (branch,) = media.web_branches
    assert pipeline.attached == [branch] and not branch.awake  # nobody watches yet
    viewer = Viewer()
    branch.queued = 40  # what it kept while asleep
    web.add_viewer(viewer, viewer.done)
    assert branch.awake and viewer.got == []  # not yet: the kept video is still flowing
    stream(branch, 8)  # through the hub: frames 0..7, keyframes 0, 3, 6
    scheduler.run(3 * DRAIN_POLL_S)
    assert viewer.got == []
    branch.queued = 0
    scheduler.run(DRAIN_POLL_S)
    # The init segment and the newest GOP only, then live frames as they come.
    assert [p.data for p in viewer.got] == [b"init", b"\x06", b"\x07"]
    assert viewer.caught_up == 3
    branch.deliver(Fragment(b"live", key=False))
    assert viewer.got[-1].data == b"live"


def test_a_viewer_is_let_in_after_half_a_second_even_if_the_backlog_never_empties() -> None:
    web, scheduler, media, _ = make()
    (branch,) = media.web_branches
    branch.queued = 99
    viewer = Viewer()
    web.add_viewer(viewer)
    stream(branch, 4)
    scheduler.run(DRAIN_POLL_S * (DRAIN_MAX_POLLS - 1))
    assert viewer.got == []
    scheduler.run(DRAIN_POLL_S)
    assert [p.data for p in viewer.got] == [b"init", b"\x03"]


def test_the_last_viewer_leaving_puts_it_to_sleep_and_forgets_the_stale_gop() -> None:
    web, scheduler, media, pipeline = make()
    (branch,) = media.web_branches
    a, b = Viewer(), Viewer()
    ta = web.add_viewer(a)
    scheduler.run(DRAIN_POLL_S)
    stream(branch, 5)
    tb = web.add_viewer(b)  # awake already: joins at once with the current GOP
    assert [p.data for p in b.got] == [b"init", b"\x03", b"\x04"]
    web.remove_viewer(ta)
    assert branch.awake
    web.remove_viewer(tb)
    assert not branch.awake and pipeline.detached == []  # asleep, not gone
    # Woken again: what the hub had is old; only the kept video's newest GOP is sent.
    c = Viewer()
    web.add_viewer(c)
    branch.deliver(Fragment(b"\x14", key=False))  # kept, but its keyframe was dropped
    branch.deliver(Fragment(b"\x15", key=True))
    scheduler.run(DRAIN_POLL_S)
    assert [p.data for p in c.got] == [b"init", b"\x15"]


def test_a_viewer_leaving_while_the_branch_drains_never_joins() -> None:
    web, scheduler, media, _ = make()
    (branch,) = media.web_branches
    branch.queued = 10
    viewer = Viewer()
    token = web.add_viewer(viewer)
    web.remove_viewer(token)
    assert not branch.awake
    branch.queued = 0
    stream(branch, 3)
    scheduler.run(1.0)
    assert viewer.got == [] and web.hub.viewers == 0


def test_viewers_waiting_for_the_camera_get_the_next_stream() -> None:
    web, scheduler, media, pipeline = make()
    viewer = Viewer()
    web.add_viewer(viewer)
    scheduler.run(DRAIN_POLL_S)
    stream(media.web_branches[0], 2)
    web.pipeline_going()
    web.pipeline_streaming(pipeline, "h264")  # the camera is back: a new branch, woken
    old, new = media.web_branches
    assert new.awake and pipeline.attached == [old, new]
    stream(new, 2)
    assert [p.data for p in viewer.got] == [b"init", b"\x00", b"\x01"] * 2


def test_a_viewer_while_the_camera_is_down_gets_its_first_stream() -> None:
    scheduler = FakeScheduler(FakeClock())
    media = FakeMedia(scheduler)
    web = WebView(media, scheduler, CameraLogger(logging.getLogger("test"), "cam1"))  # type: ignore[arg-type]
    viewer = Viewer()
    web.add_viewer(viewer)
    web.pipeline_streaming(FakeBranchHost(), "h264")
    (branch,) = media.web_branches
    assert branch.awake
    stream(branch, 1)
    assert [p.data for p in viewer.got] == [b"init", b"\x00"]


def test_a_failed_branch_is_replaced_and_viewers_stay() -> None:
    web, scheduler, media, pipeline = make()
    viewer = Viewer()
    web.add_viewer(viewer)
    scheduler.run(DRAIN_POLL_S)
    (old,) = media.web_branches
    web.rebuild()
    new = media.web_branches[-1]
    assert pipeline.detached == [old] and new.awake
    stream(new, 1)
    assert [p.data for p in viewer.got] == [b"init", b"\x00"]


def test_no_branch_for_a_codec_the_browser_path_cannot_carry() -> None:
    web, _, media, _ = make("mjpeg")
    web.add_viewer(Viewer())
    assert media.web_branches == [] and not web.attached


def make_sub() -> tuple[WebView, FakeScheduler, FakeMedia, FakeBranchHost, list[int]]:
    scheduler = FakeScheduler(FakeClock())
    media = FakeMedia(scheduler)
    failures: list[int] = []
    spec = PipelineSpec(camera_id="cam1", url="rtsp://cam/sub", credentials=None)
    log = CameraLogger(logging.getLogger("test"), "cam1")
    web = WebView(media, scheduler, log, spec, on_failed=lambda: failures.append(1))  # type: ignore[arg-type]
    pipeline = FakeBranchHost()
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
