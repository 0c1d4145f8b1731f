"""One camera at run time: a thin shell on the loop thread around two pure deciders.

The :class:`CameraSupervisor` decides about the connection, the :class:`RecordingController`
about recording. This turns pipeline reports (through the classification table) and storage
answers into their events, and their commands into calls: pipelines from the
:class:`~nvr_gstreamer.camera.media.Media` it was given, recorder sessions
(:mod:`.sessions`), the live view (:mod:`.live_view`), wake-ups on the
:class:`~nvr_gstreamer.camera.media.Scheduler`. After every change it publishes an immutable
:class:`CameraStatus`. Everything here runs on the loop thread (asserted); other threads come
in through ``scheduler.call`` only.

Longer than the ~300 lines a module should have: it is the one place where the supervisor, the
recording controller and the media meet, and what could leave it has (supervisor commands,
recorder sessions, the live view, the status snapshot: the other modules of this package).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from nvr_gstreamer.camera.counters import StreamCounters
from nvr_gstreamer.camera.errors import ErrorKind, Fault, Recovery, classify, recovery_for, stall
from nvr_gstreamer.camera.media import (
    Branch,
    CameraPipelineLike,
    Cancellable,
    FrameCallback,
    Media,
    PipelineHooks,
    PipelineSpec,
    RecordingStorage,
    Scheduler,
)
from nvr_gstreamer.camera.recording import (
    CameraStarted,
    CameraStreaming,
    MotionChanged,
    PipelineEnding,
    PipelineStarted,
    Polled,
    RecordingController,
    RecordingEvent,
    RecordingSwitched,
    SessionFailed,
    SessionFinished,
    StorageChecked,
)
from nvr_gstreamer.camera.status import CameraStatus, EngineEvent, MotionEvent, RecordingChanged
from nvr_gstreamer.camera.supervisor import (
    CameraState,
    CameraSupervisor,
    Event,
    PipelineFailed,
    PipelineStreaming,
    ProbeFinished,
    Reach,
    StartRequested,
    StopRequested,
    SupervisorSettings,
)
from nvr_gstreamer.camera.transport import TransportChooser, TransportMode
from nvr_gstreamer.config import CameraConfig
from nvr_gstreamer.core.clock import Clock
from nvr_gstreamer.core.logsetup import camera_logger
from nvr_gstreamer.engine.commands import SupervisorCommands
from nvr_gstreamer.engine.live_view import LiveView
from nvr_gstreamer.engine.motion_watch import (
    MotionNews,
    MotionStarted,
    MotionWatch,
    motion_format,
)
from nvr_gstreamer.engine.sessions import RecorderSessions
from nvr_gstreamer.engine.snapshot import snapshot
from nvr_gstreamer.engine.web_view import WebView
from nvr_gstreamer.engine.webrtc_view import WebRtcView
from nvr_gstreamer.storage.volume import VolumeCheck

logger = logging.getLogger(__name__)

# Video flowing this long without rtspsrc's "no-more-pads": the streams are taken as known.
STREAMS_KNOWN_GRACE_S = 2.0


class Prober(Protocol):
    def submit(
        self, url: str, timeout_s: float, connect_only: bool, done: Callable[[Reach], None]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    supervisor: SupervisorSettings
    stall_timeout_s: float = 5.0
    probe_timeout_s: float = 1.0


class CameraRuntime:
    def __init__(
        self,
        camera: CameraConfig,
        scheduler: Scheduler,
        clock: Clock,
        settings: RuntimeSettings,
        prober: Prober,
        media: Media,
        publish: Callable[[CameraStatus, EngineEvent | None], None],
        storage: RecordingStorage | None = None,
    ) -> None:
        self.camera = camera
        self.scheduler = scheduler
        self._clock = clock
        self._settings = settings
        self._prober = prober
        self._media = media
        self.publish = publish
        self._storage = storage
        self.log = camera_logger(logger, camera.id)
        self.supervisor = CameraSupervisor(clock, settings.supervisor, enabled=camera.enabled)
        self.recording = RecordingController(
            clock,
            has_storage=storage is not None,
            storage_state=storage.state.state if storage is not None else None,
            wanted=camera.record and camera.enabled,
            pre_record_s=storage.pre_record_seconds if storage is not None else 0.0,
            events_only=camera.record_mode == "events",
        )
        self.transport = TransportChooser(TransportMode(camera.transport))
        self._spec = PipelineSpec(
            camera_id=camera.id,
            url=camera.url,
            credentials=camera.credentials(),
            transport=self.transport.current.value,
            udp_timeout_s=settings.stall_timeout_s,
            jitterbuffer=camera.rtp_jitterbuffer,
        )
        self.counters = StreamCounters()
        self.pipeline: CameraPipelineLike | None = None
        self.timer: Cancellable | None = None
        self.last_frame_at: float | None = None
        self._first_frame_at: float | None = None  # of the current pipeline generation
        self._gen_had_video = False  # the current pipeline generation delivered a frame
        self._gen_judged = False  # the chooser has heard how the current generation ended
        self.other_errors: dict[ErrorKind, int] = {}
        self._segment_path: Path | None = None  # current_segment(), computed once per file
        self._segment_relative: str | None = None
        self._skipped_noted: set[str] = set()  # streams left out, logged once per camera
        self._recording_reported = False
        self._sessions = (
            RecorderSessions(
                camera.id, scheduler, clock, media, storage, self.log,
                changed=self.refresh,
                finished=lambda n, ok: self._record(SessionFinished(n, ok)),
                checked=self.on_storage_checked,
                count_error=self.count_error,
            )
            if storage is not None
            else None
        )  # fmt: skip
        live_spec = (
            PipelineSpec(
                camera_id=camera.id,
                url=camera.live_url,
                credentials=camera.live_credentials(),
                udp_timeout_s=settings.stall_timeout_s,
            )
            if camera.live_url
            else None
        )
        self.live = LiveView(
            camera.id, scheduler, media, live_spec, self.log,
            on_failed=lambda: self.count_error(ErrorKind.VIDEO_SINK),
        )  # fmt: skip
        self.web = WebView(
            media, scheduler, self.log, live_spec,
            on_failed=lambda: self.count_error(ErrorKind.VIDEO_SINK),
        )  # fmt: skip
        self.webrtc = WebRtcView(media, self.log)
        self.motion_view: LiveView | None = None
        self.motion: MotionWatch | None = None
        self._post_record: Cancellable | None = None
        if camera.motion.enabled:
            self.motion_view = LiveView(
                camera.id, scheduler, media, live_spec, self.log,
                on_failed=lambda: self.count_error(ErrorKind.VIDEO_SINK),
                fmt=motion_format(camera.motion), what="motion detection",
            )  # fmt: skip
            self.motion = MotionWatch(
                camera.motion, self.motion_view, clock,
                new_id=storage.new_event_id if storage is not None else _counter(),
                news=self._motion_news,
                log=self.log,
            )  # fmt: skip
        self._commands = SupervisorCommands(self)
        self.status = snapshot(self)

    def _on_loop(self) -> bool:
        return self.scheduler.in_loop()

    def count_error(self, kind: ErrorKind) -> None:
        self.other_errors[kind] = self.other_errors.get(kind, 0) + 1

    # ---- commands from outside (loop thread) ----------------------------------------------

    def start(self) -> None:
        assert self._on_loop()
        self._record(CameraStarted(self.camera.enabled))
        if self.motion is not None and self.camera.enabled:
            self.motion.start()
        self.handle(StartRequested())

    def stop(self) -> None:
        assert self._on_loop()
        if self.motion is not None:
            self.motion.stop()
        self.handle(StopRequested())

    def start_recording(self) -> bool:
        """Switch recording on; False when storage cannot take it now (it stays off)."""
        assert self._on_loop()
        self._record(RecordingSwitched(True))
        return self.recording.wanted and self.recording.accepts_recording

    def stop_recording(self) -> None:
        """Switch recording off; the "off" event goes out once the file is final."""
        assert self._on_loop()
        self._record(RecordingSwitched(False))

    def on_storage_checked(self, check: VolumeCheck) -> None:
        assert self._on_loop()
        self._record(StorageChecked(check.state, check.reason))

    def add_viewer(self, callback: FrameCallback, token: int | None = None) -> int:
        """Start delivering decoded frames to ``callback`` (on a streaming thread)."""
        return self.live.add_viewer(callback, token)

    def remove_viewer(self, token: int) -> None:
        self.live.remove_viewer(token)

    # ---- motion ---------------------------------------------------------------------------

    def _motion_news(self, news: MotionNews) -> None:
        """From the motion view's streaming thread, or the loop (camera stopped)."""
        if self.scheduler.in_loop():
            self._on_motion(news)
        else:
            self.scheduler.call(self._on_motion, news)

    def _on_motion(self, news: MotionNews) -> None:
        """An event began or ended (loop thread): the catalog, recording, the listeners."""
        storage = self._storage
        if isinstance(news, MotionStarted):
            self.log.info("motion: event %d began (score %.3f)", news.event_id, news.score)
            if self._post_record is not None:
                self._post_record.cancel()
                self._post_record = None
            if storage is not None:
                storage.event_started(
                    news.event_id, self.camera.id, news.start_utc, news.score, news.boxes
                )
            self._record(MotionChanged(True))
            event = MotionEvent(
                self.camera.id, news.event_id, news.start_utc, None, news.score, news.boxes,
                None, self.status,
            )  # fmt: skip
        else:
            self.log.info(
                "motion: event %d ended after %.1f s (%s)",
                news.event_id, news.end_utc - news.start_utc, news.reason,
            )  # fmt: skip
            if storage is not None:
                storage.event_ended(
                    news.event_id, news.end_utc, news.score, news.peak_utc, news.boxes,
                    news.reason, news.thumbnail,
                )  # fmt: skip
            self._end_motion_later()
            self.refresh(publish=False)
            event = MotionEvent(
                self.camera.id, news.event_id, news.start_utc, news.end_utc, news.score,
                news.boxes, news.thumbnail, self.status,
            )  # fmt: skip
        self.publish(self.status, event)

    def _end_motion_later(self) -> None:
        """record_mode events: footage goes on for post_record_seconds after an event."""

        def over() -> None:
            self._post_record = None
            self._record(MotionChanged(False))

        if self._post_record is not None:
            self._post_record.cancel()
        self._post_record = self.scheduler.timeout(self.camera.motion.post_record_seconds, over)

    # ---- recording ------------------------------------------------------------------------

    def _record(self, event: RecordingEvent, refresh: bool = True) -> None:
        commands = self.recording.handle(event)
        if self._sessions is not None:  # without storage there are none
            for cmd in commands:
                self._sessions.apply(cmd, self.pipeline)
        if refresh:
            self.refresh()

    def refresh(self, publish: bool = True) -> None:
        """Take a fresh status; publish it, with a RecordingChanged when recording flipped."""
        self.status = snapshot(self)
        if not publish:
            return
        recording = self.status.recording
        if recording != self._recording_reported:
            self._recording_reported = recording
            why = "recording" if recording else "recording stopped"
            event = RecordingChanged(self.camera.id, recording, why, self.status)
            self.publish(self.status, event)
        else:
            self.publish(self.status, None)

    # ---- the supervisor -------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        self._commands.handle(event)
        self._record(CameraStreaming(self.supervisor.state is CameraState.STREAMING))

    def run_probe(self, probe_id: int, connect_only: bool) -> None:
        def done(reach: Reach) -> None:
            self.scheduler.call(self.handle, ProbeFinished(probe_id, reach))

        self._prober.submit(self.camera.url, self._settings.probe_timeout_s, connect_only, done)

    # ---- the pipeline ---------------------------------------------------------------------

    def start_pipeline(self, generation: int) -> None:
        self.release_pipeline()
        self.counters.new_generation()
        self.last_frame_at = self._first_frame_at = None
        self._gen_had_video = self._gen_judged = False
        spec = replace(self._spec, transport=self.transport.current.value)
        hooks = PipelineHooks(self._on_first_frame, self._on_fault, self._on_streams_known)
        self.pipeline = self._media.pipeline(spec, generation, hooks)
        self.log.debug(
            "starting pipeline generation %d over %s (%s)",
            generation,
            spec.transport,
            self.pipeline.receive_path,
        )
        self.pipeline.start()
        self.live.pipeline_started(self.pipeline, spec.transport)
        if self.motion_view is not None:
            self.motion_view.pipeline_started(self.pipeline, spec.transport)
        self._record(PipelineStarted())

    def release_pipeline(self) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        if self._fold_stats():
            self.last_frame_at = self._clock.monotonic()
        state = self.supervisor.state
        if state not in (CameraState.STOPPED, CameraState.DISABLED) and not self._gen_judged:
            # Ended without a fault of its own: no video within the connect timeout, a stall.
            self._gen_judged = True
            note = self.transport.attempt_failed(None, self._gen_had_video)
            if note is not None:
                self.log.info("%s", note)
        self.live.pipeline_going()
        if self.motion_view is not None:
            self.motion_view.pipeline_going()
        self.web.pipeline_going()
        self.webrtc.pipeline_going()
        stopping = state in (CameraState.STOPPED, CameraState.FAILED)
        self._record(PipelineEnding(stopping, self._last_frame_wall()))
        pipeline.release()
        self.pipeline = None

    def _last_frame_wall(self) -> float | None:
        """UTC time of the last frame seen (to a poll interval), None if none this generation."""
        if self.last_frame_at is None:
            return None
        return self._clock.wall().timestamp() - (self._clock.monotonic() - self.last_frame_at)

    def _current(self, generation: int) -> bool:
        return self.pipeline is not None and self.pipeline.generation == generation

    def _on_streams_known(self, generation: int) -> None:
        pipeline = self.pipeline
        if pipeline is None or pipeline.generation != generation:
            return
        for what in pipeline.skipped:
            if what not in self._skipped_noted:
                self._skipped_noted.add(what)
                self.log.info("%s is not recorded (not a codec a segment holds untouched)", what)
        if self._sessions is not None:
            self._sessions.streams_known(self.recording.session, pipeline)
        pipeline.open_audio()

    def _on_first_frame(self, generation: int) -> None:
        self.last_frame_at = self._first_frame_at = self._clock.monotonic()
        self._gen_had_video = True
        self.transport.streaming()
        self.handle(PipelineStreaming(generation))
        if self.pipeline is not None and self.pipeline.generation == generation:
            self.web.pipeline_streaming(
                self.pipeline, self.pipeline.codec, self.transport.current.value
            )
            self.webrtc.pipeline_streaming(self.pipeline, self.pipeline.codec)

    def _on_fault(self, generation: int, fault: Fault, branch: Branch | None) -> None:
        kind = classify(fault)
        recovery = recovery_for(kind, fault.origin)
        if kind is ErrorKind.UNKNOWN:
            self.log.warning(
                "unclassified fault, recovering by %s: %s", recovery.value, fault.describe()
            )
        else:
            self.log.debug("fault %s: %s", kind.value, fault.describe())
        if recovery is Recovery.RESTART_PIPELINE:
            switch = None
            if generation == self.supervisor.generation and not self._gen_judged:
                # The first fault of an attempt tells the chooser how its transport did.
                self._gen_judged = True
                switch = self.transport.attempt_failed(kind, self._gen_had_video)
                if switch is not None:
                    self.log.info("%s", switch)
            message = self.transport.refusal_message(kind) or fault.reason
            self.handle(PipelineFailed(generation, kind, message, other_transport=bool(switch)))
            return
        # Faults of the recording and live branches never restart the camera.
        self.count_error(kind)
        self.log.warning("%s fault (%s): %s", kind.value, recovery.value, fault.describe())
        if generation != self.supervisor.generation:
            return
        if recovery is Recovery.REBUILD_LIVE and self.webrtc.owns(branch):
            self.webrtc.branch_failed(branch, fault.describe())  # that viewer's session ends
        elif recovery is Recovery.REBUILD_LIVE and self.web.owns(branch):
            self.web.rebuild()
        elif recovery is Recovery.REBUILD_LIVE:
            motion = self.motion_view
            (motion if motion is not None and motion.owns(branch) else self.live).rebuild()
        session = self._sessions.session_of(branch) if self._sessions is not None else None
        if session is not None:
            self._record(SessionFailed(session, recovery, fault.describe()))
        else:
            self.refresh()

    # ---- stats, stall watch, recorder watchdog (the engine's poll timer) --------------------

    def _fold_stats(self) -> bool:
        """Fold the pipeline's counters into the totals; True when frames arrived."""
        if self.pipeline is None:
            return False
        buffers, nbytes = self.pipeline.stats()
        lost, late = self.pipeline.rtp_stats()
        return self.counters.fold(buffers, nbytes, lost, late)

    def poll(self) -> None:
        assert self._on_loop()
        now = self._clock.monotonic()
        if self._fold_stats():
            self.last_frame_at = now
        self.counters.sample(now)
        if self.motion is not None:
            self.motion.tick()
        for view in (self.live, self.motion_view, self.web):
            if view is not None:
                view.check_stall(
                    now, self._settings.stall_timeout_s, self._settings.supervisor.connect_timeout_s
                )
        pipeline = self.pipeline
        streaming = self.supervisor.state is CameraState.STREAMING
        if pipeline is not None and streaming and self.last_frame_at is not None:
            silent = now - self.last_frame_at
            if silent >= self._settings.stall_timeout_s:
                fault = stall(silent)
                self.log.debug("stall: %s", fault.message)
                self.handle(
                    PipelineFailed(pipeline.generation, classify(fault), fault.message, True)
                )
                return
        if self._sessions is not None:
            number = self.recording.session
            age = None if self.last_frame_at is None else now - self.last_frame_at
            output, audio = self._sessions.output(number), self._sessions.audio_counts(number)
            self._record(Polled(age, output, audio), refresh=False)  # refreshed below
        first = self._first_frame_at
        waited = first is not None and now - first >= STREAMS_KNOWN_GRACE_S
        if pipeline is not None and not pipeline.streams_known and waited:
            # rtspsrc always says "no more pads"; should it not, video must not wait forever.
            pipeline.mark_streams_known()
        self.refresh()

    def current_segment(self) -> str | None:
        """The file being written, relative to the storage root."""
        sessions, storage = self._sessions, self._storage
        if sessions is None or storage is None:
            return None
        path = sessions.current_file(self.recording.session)
        if path is None:
            return None
        if path is not self._segment_path:  # read twice a second: pathlib work once per file
            try:
                relative = path.relative_to(storage.root).as_posix()
            except ValueError:
                relative = None
            self._segment_path, self._segment_relative = path, relative
        return self._segment_relative


def _counter() -> Callable[[], int]:
    """Event ids without storage (nothing is kept; the listeners still hear of events)."""
    n = 0

    def next_id() -> int:
        nonlocal n
        n += 1
        return n

    return next_id
