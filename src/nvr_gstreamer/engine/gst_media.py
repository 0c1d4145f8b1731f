"""The product's :class:`~nvr_gstreamer.camera.media.Media`: GStreamer pipelines and branches."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from nvr_gstreamer.camera.media import (
    FragmentClosed,
    FragmentOpened,
    FrameCallback,
    LiveFormat,
    PipelineHooks,
    PipelineSpec,
)
from nvr_gstreamer.camera.webrtc import SendSignal
from nvr_gstreamer.gst.live import LiveBranch, LiveStream
from nvr_gstreamer.gst.loop import GstLoop
from nvr_gstreamer.gst.pipeline import CameraPipeline
from nvr_gstreamer.gst.recorder import RecorderBranch
from nvr_gstreamer.gst.web_live import WebLiveBranch, WebStream
from nvr_gstreamer.gst.webrtc_live import WebRtcBranch


class GstMedia:
    def __init__(self, loop: GstLoop, teardown: Executor) -> None:
        self._loop = loop
        self._teardown = teardown

    def pipeline(self, spec: PipelineSpec, generation: int, hooks: PipelineHooks) -> CameraPipeline:
        return CameraPipeline(self._loop, spec, generation, hooks, self._teardown)

    def recorder(
        self,
        segment_s: float,
        location_for: Callable[[int], Path | None],
        on_opened: Callable[[Any, FragmentOpened], None],
        on_closed: Callable[[Any, FragmentClosed], None],
        *,
        armed: bool,
        pre_record_s: float,
        hold: bool,
    ) -> RecorderBranch:
        return RecorderBranch(
            segment_s,
            location_for,
            on_opened,
            on_closed,
            armed=armed,
            pre_record_s=pre_record_s,
            hold=hold,
        )

    def live_branch(self, camera_id: str, fmt: LiveFormat, deliver: FrameCallback) -> LiveBranch:
        return LiveBranch(camera_id, fmt, deliver)

    def live_stream(
        self,
        spec: PipelineSpec,
        fmt: LiveFormat,
        deliver: FrameCallback,
        on_failed: Callable[[str], None],
    ) -> LiveStream:
        return LiveStream(self._loop, spec, fmt, deliver, on_failed, self._teardown)

    def web_branch(self) -> WebLiveBranch:
        return WebLiveBranch()

    def web_stream(self, spec: PipelineSpec, on_failed: Callable[[str], None]) -> WebStream:
        return WebStream(self._loop, spec, on_failed, self._teardown)

    def webrtc_branch(self, send: SendSignal) -> WebRtcBranch:
        return WebRtcBranch(send)
