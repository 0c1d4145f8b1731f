"""The browser live view's bookkeeping (loop thread) on fake media and a fake clock: which sink
serves each viewer's socket. The main stream's branch is there whenever the camera streams;
viewers are handed to every new sink (a duplicate each, taken back before the sink goes) and
their sockets closed when they leave; a live_url sub-stream runs while someone watches and a
while after."""

from __future__ import annotations

import itertools
import logging

from nvr_gstreamer.camera.media import PipelineSpec
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.engine.live_view import LIVE_RETRY_S
from nvr_gstreamer.engine.web_view import LINGER_S, WebView
from nvr_gstreamer.testing.fake_media import FakeBranchHost, FakeMedia, FakeScheduler


class Fds:
    """Descriptors as numbers: duplicates are new numbers, and every one open is known."""

    def __init__(self) -> None:
        self._next = itertools.count(100)
        self.open: set[int] = set()

    def socket(self) -> int:
        fd = next(self._next)
        self.open.add(fd)
        return fd

    def dup(self, fd: int) -> int:
        assert fd in self.open, f"dup of closed fd {fd}"
        return self.socket()

    def close(self, fd: int) -> None:
        self.open.remove(fd)


def make(
    codec: str = "h264", spec: PipelineSpec | None = None, streaming: bool = True
) -> tuple[WebView, FakeScheduler, FakeMedia, FakeBranchHost, Fds, list[int]]:
    scheduler = FakeScheduler(FakeClock())
    media = FakeMedia(scheduler)
    fds = Fds()
    failures: list[int] = []
    log = CameraLogger(logging.getLogger("test"), "cam1")
    web = WebView(
        media, scheduler, log, spec,  # type: ignore[arg-type]
        on_failed=lambda: failures.append(1), dup=fds.dup, close=fds.close,
    )  # fmt: skip
    pipeline = FakeBranchHost()
    if streaming:
        web.pipeline_streaming(pipeline, codec, "udp")  # type: ignore[arg-type]
    return web, scheduler, media, pipeline, fds, failures


def test_the_branch_is_there_before_anyone_watches_and_stays_after_the_last_leaves() -> None:
    web, _, media, pipeline, fds, _ = make()
    (branch,) = media.web_branches
    assert pipeline.attached == [branch] and web.source == "main"
    a, b = fds.socket(), fds.socket()
    ta, tb = web.add_viewer(a), web.add_viewer(b)
    assert len(branch.clients) == 2 and not {a, b} & set(branch.clients)  # duplicates
    assert set(branch.clients) <= fds.open
    web.remove_viewer(ta)
    web.remove_viewer(tb)
    # The sink closed its duplicates (taken back), the view closed the viewers' own.
    assert branch.clients == [] and fds.open == set(branch.given)
    assert pipeline.detached == [] and web.attached  # unwatched, it only keeps the GOP


def test_a_viewer_is_removed_once_and_an_unknown_token_is_ignored() -> None:
    web, _, media, _, fds, _ = make()
    token = web.add_viewer(fds.socket())
    web.remove_viewer(token)
    web.remove_viewer(token)
    web.remove_viewer(12345)
    assert media.web_branches[0].clients == [] and web.viewers == 0


def test_viewers_waiting_for_the_camera_are_handed_to_each_new_branch() -> None:
    web, _, media, pipeline, fds, _ = make()
    viewer = fds.socket()
    web.add_viewer(viewer)
    (old,) = media.web_branches
    web.pipeline_going()
    assert old.clients == [] and pipeline.detached == [old]  # taken back before it goes
    assert not web.attached and web.viewers == 1
    web.pipeline_streaming(pipeline, "h264")  # type: ignore[arg-type]
    new = media.web_branches[-1]
    assert len(new.clients) == 1 and new.clients[0] in fds.open and viewer in fds.open


def test_a_viewer_while_the_camera_is_down_gets_its_first_stream() -> None:
    web, _, media, _, fds, _ = make(streaming=False)
    web.add_viewer(fds.socket())
    assert media.web_branches == []
    web.pipeline_streaming(FakeBranchHost(), "h265")  # type: ignore[arg-type]
    (branch,) = media.web_branches
    assert len(branch.clients) == 1


def test_a_failed_branch_is_replaced_and_viewers_stay() -> None:
    web, _, media, pipeline, fds, _ = make()
    web.add_viewer(fds.socket())
    (old,) = media.web_branches
    assert web.owns(old) and not web.owns(object())
    web.rebuild()
    new = media.web_branches[-1]
    assert pipeline.detached == [old] and old.clients == [] and len(new.clients) == 1


def test_no_branch_for_a_codec_the_browser_path_cannot_carry() -> None:
    web, _, media, _, fds, _ = make("mjpeg")
    web.add_viewer(fds.socket())
    assert media.web_branches == [] and not web.attached and web.source is None


SUB = PipelineSpec(camera_id="cam1", url="rtsp://cam/sub", credentials=None)


def test_a_camera_with_a_live_url_is_watched_from_its_sub_stream() -> None:
    web, scheduler, media, pipeline, fds, _ = make("h265", SUB)
    assert media.web_streams == []  # nobody watches: no sub-stream
    token = web.add_viewer(fds.socket())
    (stream,) = media.web_streams
    assert stream.started and stream.spec.url == "rtsp://cam/sub"
    assert stream.spec.transport == "udp"  # the way the main stream works
    assert pipeline.attached == [] and web.source == "live_url" and len(stream.clients) == 1
    web.remove_viewer(token)
    scheduler.run(LINGER_S - 1)
    assert not stream.released  # a viewer coming back soon starts at once
    scheduler.run(1)
    assert stream.released and not web.attached and fds.open == set(stream.given)


def test_a_viewer_coming_back_while_the_sub_stream_lingers_keeps_it() -> None:
    web, scheduler, media, _, fds, _ = make("h265", SUB)
    web.remove_viewer(web.add_viewer(fds.socket()))
    scheduler.run(LINGER_S / 2)
    web.add_viewer(fds.socket())
    scheduler.run(LINGER_S)
    (stream,) = media.web_streams
    assert not stream.released and len(stream.clients) == 1


def test_a_failed_sub_stream_is_retried_while_someone_watches() -> None:
    web, scheduler, media, _, fds, failures = make("h265", SUB)
    web.add_viewer(fds.socket())
    (first,) = media.web_streams
    first.on_failed("404")
    assert failures == [1] and not web.attached and first.clients == []
    scheduler.run(LIVE_RETRY_S)
    assert len(media.web_streams) == 2 and media.web_streams[1].started
    assert len(media.web_streams[1].clients) == 1


def test_the_main_pipeline_going_closes_the_sub_stream_and_no_retry_follows() -> None:
    web, scheduler, media, pipeline, fds, _ = make("h265", SUB)
    web.add_viewer(fds.socket())
    (stream,) = media.web_streams
    stream.on_failed("timeout")
    web.pipeline_going()
    scheduler.run(2 * LIVE_RETRY_S)
    assert len(media.web_streams) == 1
    web.pipeline_streaming(pipeline, "h265")  # type: ignore[arg-type]
    assert len(media.web_streams) == 2
    web.pipeline_going()
    assert media.web_streams[1].released and media.web_streams[1].clients == []


STALL_S, CONNECT_S = 3.0, 5.0


def _poll(web: WebView, scheduler: FakeScheduler, seconds: float, step: float = 0.5) -> None:
    """The camera's poll, every ``step`` seconds for ``seconds``."""
    for _ in range(round(seconds / step)):
        scheduler.run(step)
        web.check_stall(scheduler.clock.monotonic(), STALL_S, CONNECT_S)


def test_a_sub_stream_gone_silent_is_closed_and_tried_again_with_its_viewers() -> None:
    web, scheduler, media, _, fds, failures = make("h265", SUB)
    web.add_viewer(fds.socket())
    (first,) = media.web_streams
    for _ in range(20):  # frames reach the sink: never judged
        first.frames += 1
        _poll(web, scheduler, 0.5)
    assert not first.released and failures == []
    _poll(web, scheduler, STALL_S - 0.5)  # silent, not yet for the stall timeout
    assert not first.released
    _poll(web, scheduler, 1.0)
    assert first.released and first.clients == [] and failures == [1]
    assert not web.attached
    scheduler.run(LIVE_RETRY_S)
    second = media.web_streams[1]
    assert second.started and len(second.clients) == 1  # the viewer is handed to the new one


def test_before_its_first_frame_a_web_sub_stream_has_the_connect_timeout() -> None:
    web, scheduler, media, _, fds, _ = make("h265", SUB)
    web.add_viewer(fds.socket())
    (stream,) = media.web_streams
    _poll(web, scheduler, CONNECT_S - 0.5)
    assert not stream.released
    _poll(web, scheduler, 1.0)
    assert stream.released


def test_the_main_streams_branch_is_never_judged_by_the_web_view() -> None:
    web, scheduler, media, _, fds, failures = make()
    web.add_viewer(fds.socket())
    _poll(web, scheduler, 4 * CONNECT_S)
    assert media.web_branches[0].clients and failures == [] and web.source == "main"
