"""One camera at run time: the supervisor decides, this does (on the GStreamer loop thread).

It applies the supervisor's commands — build or release a pipeline generation, arm the one
wake-up timer, run a probe — turns pipeline reports into supervisor events through the
classification table, watches for stalls, and publishes an immutable status after every change.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from nvr_gstreamer.camera.errors import (
    ErrorKind,
    Fault,
    Recovery,
    classify,
    recovery_for,
    stall,
)
from nvr_gstreamer.camera.status import CameraStateChanged, CameraStatus
from nvr_gstreamer.camera.supervisor import (
    CameraState,
    CameraSupervisor,
    Command,
    Event,
    PipelineFailed,
    PipelineStreaming,
    ProbeFinished,
    RunProbe,
    ScheduleWake,
    StartPipeline,
    StartRequested,
    StateChanged,
    StopPipeline,
    StopRequested,
    SupervisorSettings,
    Woke,
)
from nvr_gstreamer.config import CameraConfig
from nvr_gstreamer.core.clock import Clock
from nvr_gstreamer.core.logsetup import camera_logger
from nvr_gstreamer.core.redact import redact
from nvr_gstreamer.gst.live import FrameCallback, LiveBranch, LiveFormat, LiveFrame
from nvr_gstreamer.gst.loop import GstLoop, Timer
from nvr_gstreamer.gst.pipeline import CameraPipeline, PipelineSpec

logger = logging.getLogger(__name__)

_RATE_WINDOW_S = 2.0


class Prober(Protocol):
    def submit(self, url: str, timeout_s: float, done: Callable[[bool], None]) -> None: ...


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    supervisor: SupervisorSettings
    stall_timeout_s: float = 5.0
    probe_timeout_s: float = 1.0


class CameraRuntime:
    def __init__(
        self,
        camera: CameraConfig,
        loop: GstLoop,
        clock: Clock,
        settings: RuntimeSettings,
        prober: Prober,
        teardown: Executor,
        publish: Callable[[CameraStatus, CameraStateChanged | None], None],
    ) -> None:
        self.camera = camera
        self._loop = loop
        self._clock = clock
        self._settings = settings
        self._prober = prober
        self._teardown = teardown
        self._publish = publish
        self._log = camera_logger(logger, camera.id)
        self.supervisor = CameraSupervisor(clock, settings.supervisor, enabled=camera.enabled)
        self._spec = PipelineSpec(
            camera_id=camera.id,
            url=camera.url,
            credentials=camera.credentials(),
            transport=camera.transport,
        )
        self.pipeline: CameraPipeline | None = None
        self._timer: Timer | None = None
        self._frames = 0
        self._bytes = 0
        self._seen: tuple[int, int] = (0, 0)  # stats of the current pipeline at the last poll
        self._last_frame_at: float | None = None
        self._samples: deque[tuple[float, int, int]] = deque()
        self._other_errors: dict[ErrorKind, int] = {}
        self._viewers: dict[int, FrameCallback] = {}
        self._next_viewer = 0
        self._live: LiveBranch | None = None
        self._live_format = LiveFormat()
        self.status = self._snapshot()

    # ---- commands from outside (loop thread) ----------------------------------------------

    def start(self) -> None:
        self._handle(StartRequested())

    def stop(self) -> None:
        self._handle(StopRequested())

    def add_viewer(self, callback: FrameCallback) -> int:
        """Start delivering decoded frames to ``callback`` (on a streaming thread)."""
        self._next_viewer += 1
        self._viewers[self._next_viewer] = callback
        self._attach_live()
        return self._next_viewer

    def remove_viewer(self, token: int) -> None:
        self._viewers.pop(token, None)
        if not self._viewers:
            self._detach_live()

    # ---- live branch ----------------------------------------------------------------------

    def _deliver_frame(self, frame: LiveFrame) -> None:
        for callback in list(self._viewers.values()):
            callback(frame)

    def _attach_live(self) -> None:
        if self._live is not None or self.pipeline is None or not self._viewers:
            return
        self._live = LiveBranch(self.camera.id, self._live_format, self._deliver_frame)
        self._live.attach(self.pipeline.pipeline, self.pipeline.tee)
        self._log.debug("live view on")

    def _detach_live(self) -> None:
        if self._live is not None:
            self._live.detach()
            self._live = None
            self._log.debug("live view off: nothing decoded")

    @property
    def live_attached(self) -> bool:
        return self._live is not None

    # ---- supervisor plumbing --------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        self._apply(self.supervisor.handle(event))

    def _apply(self, commands: list[Command]) -> None:
        changes: list[StateChanged] = []
        for cmd in commands:
            match cmd:
                case StartPipeline(generation=gen):
                    self._start_pipeline(gen)
                case StopPipeline():
                    self._release_pipeline()
                case ScheduleWake(delay_s=delay):
                    if self._timer is not None:
                        self._timer.cancel()
                    self._timer = (
                        None if delay is None else self._loop.timeout(delay, self._wake_cb)
                    )
                case RunProbe(probe_id=pid):
                    self._run_probe(pid)
                case StateChanged():
                    changes.append(cmd)
        for ch in changes:
            self._log.info("%s -> %s: %s", ch.old.value, ch.new.value, redact(ch.reason))
        self.status = self._snapshot()
        if changes:
            for ch in changes:
                event = CameraStateChanged(self.camera.id, ch.old, ch.new, ch.reason, self.status)
                self._publish(self.status, event)
        else:
            self._publish(self.status, None)

    def _wake_cb(self) -> None:
        self._timer = None
        self._handle(Woke())

    def _run_probe(self, probe_id: int) -> None:
        def done(reachable: bool) -> None:
            self._loop.call(self._handle, ProbeFinished(probe_id, reachable))

        self._prober.submit(self.camera.url, self._settings.probe_timeout_s, done)

    # ---- pipeline -------------------------------------------------------------------------

    def _start_pipeline(self, generation: int) -> None:
        self._release_pipeline()
        self._seen = (0, 0)
        self._last_frame_at = None
        self.pipeline = CameraPipeline(
            self._loop,
            self._spec,
            generation,
            on_first_frame=self._on_first_frame,
            on_fault=self._on_fault,
            teardown=self._teardown,
        )
        self._log.debug("starting pipeline generation %d", generation)
        self.pipeline.start()
        self._attach_live()

    def _release_pipeline(self) -> None:
        if self.pipeline is not None:
            self._collect_stats()
            self._live = None  # goes down with its pipeline
            self.pipeline.release()
            self.pipeline = None

    def _on_first_frame(self, generation: int) -> None:
        self._last_frame_at = self._clock.monotonic()
        self._handle(PipelineStreaming(generation))

    def _on_fault(self, generation: int, fault: Fault) -> None:
        kind = classify(fault)
        recovery = recovery_for(kind, fault.origin)
        if kind is ErrorKind.UNKNOWN:
            self._log.warning(
                "unclassified fault, recovering by %s: %s", recovery.value, fault.describe()
            )
        else:
            self._log.debug("fault %s: %s", kind.value, fault.describe())
        if recovery is Recovery.RESTART_PIPELINE:
            self._handle(PipelineFailed(generation, kind, fault.message))
            return
        # Faults of the recording and live branches never restart the camera.
        self._other_errors[kind] = self._other_errors.get(kind, 0) + 1
        self._log.warning("%s fault (%s): %s", kind.value, recovery.value, fault.describe())
        if recovery is Recovery.REBUILD_LIVE and generation == self.supervisor.generation:
            self._detach_live()
            self._attach_live()
        self.status = self._snapshot()
        self._publish(self.status, None)

    # ---- stats and stall watch (called by the engine's poll timer) -------------------------

    def _collect_stats(self) -> bool:
        """Fold the pipeline's counters into the totals; True when frames arrived."""
        if self.pipeline is None:
            return False
        buffers, nbytes = self.pipeline.stats()
        d_frames, d_bytes = buffers - self._seen[0], nbytes - self._seen[1]
        self._seen = (buffers, nbytes)
        self._frames += max(0, d_frames)
        self._bytes += max(0, d_bytes)
        return d_frames > 0

    def poll(self) -> None:
        now = self._clock.monotonic()
        if self._collect_stats():
            self._last_frame_at = now
        self._samples.append((now, self._frames, self._bytes))
        while self._samples and now - self._samples[0][0] > _RATE_WINDOW_S:
            self._samples.popleft()
        pipeline = self.pipeline
        if (
            pipeline is not None
            and self.supervisor.state is CameraState.STREAMING
            and self._last_frame_at is not None
        ):
            silent = now - self._last_frame_at
            if silent >= self._settings.stall_timeout_s:
                fault = stall(silent)
                self._log.debug("stall: %s", fault.message)
                self._handle(
                    PipelineFailed(pipeline.generation, classify(fault), fault.message, True)
                )
                return
        self.status = self._snapshot()
        self._publish(self.status, None)

    def _rates(self) -> tuple[float, float]:
        if len(self._samples) < 2:
            return 0.0, 0.0
        (t0, f0, b0), (t1, f1, b1) = self._samples[0], self._samples[-1]
        span = t1 - t0
        if span <= 0:
            return 0.0, 0.0
        return (f1 - f0) / span, (b1 - b0) * 8 / span

    def _snapshot(self) -> CameraStatus:
        view = self.supervisor.view()
        fps, bps = self._rates()
        errors = dict(view.counters.errors)
        for kind, n in self._other_errors.items():
            errors[kind] = errors.get(kind, 0) + n
        streaming = view.state is CameraState.STREAMING
        return CameraStatus(
            camera_id=self.camera.id,
            name=self.camera.display_name,
            state=view.state,
            since=view.since,
            reason=redact(view.reason),
            last_error_kind=view.last_error_kind,
            last_error_message=redact(view.last_error_message) if view.last_error_message else None,
            reconnect_attempt=view.reconnect_attempt,
            next_retry_in_s=view.next_retry_in_s,
            codec=self.pipeline.codec if self.pipeline is not None else None,
            frames=self._frames,
            bytes=self._bytes,
            fps=fps if streaming else 0.0,
            bitrate_bps=bps if streaming else 0.0,
            disconnects=view.counters.disconnects,
            reconnect_attempts=view.counters.reconnect_attempts,
            stalls=view.counters.stalls,
            errors=tuple(sorted(errors.items(), key=lambda kv: kv[0].value)),
        )
