"""The decoded live view of one camera: exists only while someone watches (loop thread).

From the camera's ``live_url`` (a sub-stream, a pipeline of its own) when it has one, else a
branch on the main pipeline's tee. A failure of either never disturbs the camera or its
recording: a branch is rebuilt, a sub-stream retried after :data:`LIVE_RETRY_S`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from nvr_gstreamer.camera.media import (
    Cancellable,
    FrameCallback,
    LiveFormat,
    LiveFrame,
    LiveStreamLike,
    Media,
    PipelineSpec,
    Scheduler,
)
from nvr_gstreamer.core.logsetup import CameraLogger

LIVE_RETRY_S = 5.0
# The shortest silence judged a stall: the slowest view (motion at 1 fps) brings a frame every
# second, and the shortest stall_timeout_seconds is 0.5 s.
MIN_STALL_S = 2.0


class SilenceWatch:
    """A sub-stream's watchdog (loop thread): given the stream's frame count at each poll, it
    says how long nothing has come once that is a stall: ``stall_s`` (at least
    :data:`MIN_STALL_S`) after a frame, ``connect_s`` before the first. rtspsrc alone notices a
    silent camera only after ~27 s; until then a view would be blind."""

    def __init__(self) -> None:
        self._at_start = 0
        self._quiet: tuple[int, float] | None = None  # (count, since when) it last changed

    def restart(self, frames: int) -> None:
        """A new stream; ``frames`` is the count now (the first frame makes it bigger)."""
        self._at_start, self._quiet = frames, None

    def stalled(self, frames: int, now: float, stall_s: float, connect_s: float) -> float | None:
        """Seconds without a frame if the stream has stalled, else None."""
        if self._quiet is None or self._quiet[0] != frames:
            self._quiet = (frames, now)
            return None
        silent = now - self._quiet[1]
        limit = max(MIN_STALL_S, stall_s) if frames > self._at_start else connect_s
        return silent if silent >= limit else None


class LiveView:
    def __init__(
        self,
        camera_id: str,
        scheduler: Scheduler,
        media: Media,
        live_spec: PipelineSpec | None,
        log: CameraLogger,
        on_failed: Callable[[], None],
        fmt: LiveFormat | None = None,
        what: str = "live view",
    ) -> None:
        self._camera_id = camera_id
        self._scheduler = scheduler
        self._media = media
        self._live_spec = live_spec
        self._log = log
        self._on_failed = on_failed
        self._format = fmt or LiveFormat()
        self._what = what
        self._viewers: dict[int, FrameCallback] = {}
        self._next_token = 0
        self._pipeline: Any = None  # the camera's current pipeline, None while down
        self._transport = "tcp"  # how the main stream last worked: the sub-stream goes so too
        self._branch: Any = None
        self._stream: LiveStreamLike | None = None
        self._retry: Cancellable | None = None
        self._frames = 0  # delivered (streaming thread), for the sub-stream's watchdog
        self._silence = SilenceWatch()

    @property
    def attached(self) -> bool:
        return self._branch is not None or self._stream is not None

    def owns(self, branch: object) -> bool:
        return branch is not None and branch is self._branch

    @property
    def source(self) -> str | None:
        """Where the live view decodes from: "live_url", "main" (the recorded stream), or None."""
        if self._stream is not None:
            return "live_url"
        return "main" if self._branch is not None else None

    # ---- viewers --------------------------------------------------------------------------

    def add_viewer(self, callback: FrameCallback, token: int | None = None) -> int:
        """Deliver decoded frames to ``callback`` (on a streaming thread) from now on."""
        if token is None:
            self._next_token += 1
            token = self._next_token
        self._viewers[token] = callback
        self._attach()
        return token

    def remove_viewer(self, token: int) -> None:
        self._viewers.pop(token, None)
        if not self._viewers:
            self._detach()

    def _deliver(self, frame: LiveFrame) -> None:
        self._frames += 1
        for callback in list(self._viewers.values()):
            callback(frame)

    # ---- the camera's pipeline ------------------------------------------------------------

    def pipeline_started(self, pipeline: Any, transport: str) -> None:
        self._pipeline = pipeline
        self._transport = transport
        self._attach()

    def pipeline_going(self) -> None:
        """The main pipeline goes: a branch goes down with it, a sub-stream is closed."""
        if self._stream is not None:
            self._detach()
        self._branch = None
        self._pipeline = None

    def check_stall(self, now: float, stall_s: float, connect_s: float) -> None:
        """Loop thread, from the camera's poll: a sub-stream that brings no frame for
        ``stall_s`` (``connect_s`` before its first) is closed and tried again after
        :data:`LIVE_RETRY_S` (:class:`SilenceWatch`), so neither the view nor motion detection
        stays blind. A branch on the main pipeline needs no watchdog: the camera's own covers
        it."""
        stream = self._stream
        if stream is None:
            return
        silent = self._silence.stalled(self._frames, now, stall_s, connect_s)
        if silent is not None:
            stream.release()
            self._failed(f"no video for {silent:.1f} s (stalled)")

    def rebuild(self) -> None:
        """The branch failed (decoder, sink): a fresh one; the recording is untouched."""
        self._detach()
        self._attach()

    # ---- inside ---------------------------------------------------------------------------

    def _attach(self) -> None:
        if self.attached or self._pipeline is None or not self._viewers:
            return
        if self._live_spec is not None:
            spec = replace(self._live_spec, transport=self._transport)
            stream = self._media.live_stream(spec, self._format, self._deliver, self._failed)
            self._stream = stream
            self._silence.restart(self._frames)
            stream.start()
            self._log.debug("%s on, from live_url", self._what)
            return
        branch = self._media.live_branch(self._camera_id, self._format, self._deliver)
        self._branch = branch
        self._pipeline.attach(branch)
        self._log.debug("%s on", self._what)

    def _failed(self, why: str) -> None:
        self._log.warning(
            "%s (live_url) failed: %s; retrying in %g s", self._what, why, LIVE_RETRY_S
        )
        self._stream = None
        self._on_failed()
        if self._retry is not None:
            self._retry.cancel()
        self._retry = self._scheduler.timeout(LIVE_RETRY_S, self._attach)

    def _detach(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        stream, self._stream = self._stream, None
        branch, self._branch = self._branch, None
        if stream is not None:
            stream.release()
        if branch is not None and self._pipeline is not None:
            self._pipeline.detach(branch)
        if stream is not None or branch is not None:
            self._log.debug("%s off: nothing decoded", self._what)
