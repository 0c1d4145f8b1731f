"""The decoded live view's sub-stream watchdog (loop thread) on fake media and a fake clock:
a ``live_url`` stream that goes silent is closed and tried again, as the main stream is, so
the desktop tile and motion detection are not blind until rtspsrc's own ~27 s timeout."""

from __future__ import annotations

import logging

import pytest

from nvr_gstreamer.camera.media import LiveFrame, PipelineSpec
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.engine.live_view import LIVE_RETRY_S, MIN_STALL_S, LiveView
from nvr_gstreamer.testing.fake_media import FakeBranchHost, FakeMedia, FakeScheduler

SUB = PipelineSpec(camera_id="cam1", url="rtsp://cam/sub", credentials=None)
STALL_S, CONNECT_S, POLL_S = 3.0, 10.0, 0.5
FRAME = LiveFrame("cam1", 4, 2, b"\0" * 12, "I420")


class Setup:
    def __init__(self, spec: PipelineSpec | None = SUB) -> None:
        self.clock = FakeClock()
        self.scheduler = FakeScheduler(self.clock)
        self.media = FakeMedia(self.scheduler)
        self.failures: list[int] = []
        self.seen: list[LiveFrame] = []
        log = CameraLogger(logging.getLogger("test"), "cam1")
        self.view = LiveView(
            "cam1", self.scheduler, self.media, spec, log,
            on_failed=lambda: self.failures.append(1),
        )  # fmt: skip
        self.view.pipeline_started(FakeBranchHost(), "tcp")
        self.view.add_viewer(self.seen.append)

    def live(self, seconds: float, frames: bool) -> None:
        """``seconds`` of the camera's poll, the newest sub-stream delivering a frame before
        each poll or not."""
        for _ in range(round(seconds / POLL_S)):
            self.scheduler.run(POLL_S)
            if frames and self.media.live_streams and not self.media.live_streams[-1].released:
                self.media.live_streams[-1].deliver(FRAME)
            self.view.check_stall(self.clock.monotonic(), STALL_S, CONNECT_S)


def test_a_sub_stream_that_delivers_frames_is_left_alone() -> None:
    s = Setup()
    s.live(60, frames=True)
    (stream,) = s.media.live_streams
    assert not stream.released and s.failures == [] and s.seen == [FRAME] * 120


def test_a_sub_stream_gone_silent_is_closed_and_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup()
    s.live(5, frames=True)
    s.live(STALL_S - POLL_S, frames=False)
    (first,) = s.media.live_streams
    assert not first.released  # silent, but not yet for the stall timeout
    s.live(POLL_S, frames=False)
    assert first.released and s.failures == [1] and not s.view.attached
    assert "live view (live_url) failed: no video for 3.0 s (stalled); retrying in 5 s" in (
        caplog.text
    )
    s.live(LIVE_RETRY_S, frames=True)
    assert len(s.media.live_streams) == 2 and s.media.live_streams[1].started
    s.live(30, frames=True)
    assert len(s.media.live_streams) == 2 and s.failures == [1]  # the new one flows


def test_a_stall_is_never_shorter_than_two_slow_frames() -> None:
    """Motion looks at as little as 1 frame a second; the stall timeout may be 0.5 s."""
    s = Setup()
    s.live(5, frames=True)
    for _ in range(round(MIN_STALL_S / POLL_S) - 1):
        s.scheduler.run(POLL_S)
        s.view.check_stall(s.clock.monotonic(), 0.5, CONNECT_S)
    assert not s.media.live_streams[0].released
    s.scheduler.run(POLL_S)
    s.view.check_stall(s.clock.monotonic(), 0.5, CONNECT_S)
    assert s.media.live_streams[0].released


def test_before_its_first_frame_a_sub_stream_has_the_connect_timeout() -> None:
    """A camera with a long GOP brings its first frame after seconds: not a stall."""
    s = Setup()
    s.live(CONNECT_S, frames=False)  # timed from the first poll after it started
    assert not s.media.live_streams[0].released
    s.live(POLL_S, frames=False)
    assert s.media.live_streams[0].released and s.failures == [1]
    # The retry gets the connect timeout again, though frames came before.
    s.live(LIVE_RETRY_S, frames=False)
    s.live(CONNECT_S - POLL_S, frames=False)
    assert len(s.media.live_streams) == 2 and not s.media.live_streams[1].released
    s.live(POLL_S, frames=False)
    assert s.media.live_streams[1].released and s.failures == [1, 1]


def test_a_branch_on_the_main_pipeline_is_never_judged() -> None:
    s = Setup(spec=None)  # no live_url: decoded from the main stream's tee
    s.live(60, frames=False)
    assert s.media.live_streams == [] and s.failures == [] and s.view.source == "main"


def test_a_view_nobody_watches_is_never_judged() -> None:
    s = Setup()
    s.view.remove_viewer(1)
    s.live(60, frames=False)
    assert s.media.live_streams[0].released and s.failures == []
