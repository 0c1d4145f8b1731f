"""One camera at run time: the supervisor decides, this does (on the GStreamer loop thread).

It applies the supervisor's commands — build or release a pipeline generation, arm the one
wake-up timer, run a probe — turns pipeline reports into supervisor events through the
classification table, watches for stalls, and publishes an immutable status after every change.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from nvr_gstreamer.camera.errors import (
    ErrorKind,
    Fault,
    Origin,
    Recovery,
    classify,
    recovery_for,
    stall,
)
from nvr_gstreamer.camera.status import (
    CameraStateChanged,
    CameraStatus,
    EngineEvent,
    RecordingChanged,
)
from nvr_gstreamer.camera.supervisor import (
    CameraState,
    CameraSupervisor,
    Command,
    Event,
    PipelineFailed,
    PipelineStreaming,
    ProbeFinished,
    Reach,
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
from nvr_gstreamer.camera.transport import TransportChooser, TransportMode
from nvr_gstreamer.config import CameraConfig
from nvr_gstreamer.core.clock import Clock
from nvr_gstreamer.core.logsetup import camera_logger
from nvr_gstreamer.core.redact import redact
from nvr_gstreamer.gst.live import FrameCallback, LiveBranch, LiveFormat, LiveFrame, LiveStream
from nvr_gstreamer.gst.loop import GstLoop, Timer
from nvr_gstreamer.gst.pipeline import AudioStream, CameraPipeline, PipelineSpec
from nvr_gstreamer.gst.recorder import FragmentClosed, FragmentOpened, RecorderBranch
from nvr_gstreamer.storage.catalog import GapReason
from nvr_gstreamer.storage.service import StorageService
from nvr_gstreamer.storage.volume import StorageState, VolumeCheck

logger = logging.getLogger(__name__)

_RATE_WINDOW_S = 2.0
# A recording whose file stops growing this long while video arrives is rebuilt. Long enough
# for the longest GOP a camera sends (splitmuxsink writes a whole GOP at once).
RECORDER_STALL_S = 15.0
# An audio stream that delivers nothing this long while video flows is ended in the recording
# (splitmuxsink would otherwise hold every file open waiting for it, and lose the video).
AUDIO_STALL_S = 2.0
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
        loop: GstLoop,
        clock: Clock,
        settings: RuntimeSettings,
        prober: Prober,
        teardown: Executor,
        publish: Callable[[CameraStatus, EngineEvent | None], None],
        storage: StorageService | None = None,
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
        self._transport = TransportChooser(TransportMode(camera.transport))
        self._spec = PipelineSpec(
            camera_id=camera.id,
            url=camera.url,
            credentials=camera.credentials(),
            transport=self._transport.current.value,
            udp_timeout_s=settings.stall_timeout_s,
        )
        self._gen_had_video = False  # the current pipeline generation delivered a frame
        self._gen_judged = False  # the chooser has heard how the current generation ended
        self._rtp_seen: tuple[int, int] = (0, 0)  # (lost, late) of the current pipeline
        self._rtp_lost = 0
        self._rtp_late = 0
        self._skipped_noted: set[str] = set()  # streams left out, logged once per camera
        # The current recorder's audio streams, and for each (buffers, monotonic) last seen.
        self._rec_audio: list[AudioStream] = []
        self._audio_seen: dict[int, tuple[int, float]] = {}
        self.pipeline: CameraPipeline | None = None
        self._timer: Timer | None = None
        self._frames = 0
        self._bytes = 0
        self._seen: tuple[int, int] = (0, 0)  # stats of the current pipeline at the last poll
        self._last_frame_at: float | None = None
        self._first_frame_at: float | None = None  # of the current pipeline generation
        self._samples: deque[tuple[float, int, int]] = deque()
        self._other_errors: dict[ErrorKind, int] = {}
        self._viewers: dict[int, FrameCallback] = {}
        self._next_viewer = 0
        self._live: LiveBranch | LiveStream | None = None
        self._live_retry: Timer | None = None
        self._live_spec = (
            PipelineSpec(
                camera_id=camera.id,
                url=camera.live_url,
                credentials=camera.live_credentials(),
                udp_timeout_s=settings.stall_timeout_s,
            )
            if camera.live_url
            else None
        )
        self._live_format = LiveFormat()
        self._storage = storage
        self._record_wanted = bool(camera.record and storage is not None and camera.enabled)
        self._recorder: RecorderBranch | None = None
        self._finishing: tuple[RecorderBranch, ...] = ()
        self._recording_reported = False
        self._storage_state = storage.state.state if storage is not None else None
        self._awaiting_storage_check = False
        self._rec_progress: tuple[object, ...] = ()
        self._rec_progress_at = 0.0
        self.status = self._snapshot()

    # ---- commands from outside (loop thread) ----------------------------------------------

    def start(self) -> None:
        if self._storage is not None and self.camera.enabled:
            if not self._record_wanted:
                self._storage.interruption(self.camera.id, GapReason.RECORDING_OFF)
            elif self._storage_state is StorageState.FULL:
                self._storage.interruption(self.camera.id, GapReason.DISK_FULL)
            elif self._storage_state is StorageState.UNAVAILABLE:
                self._storage.interruption(self.camera.id, GapReason.STORAGE_UNAVAILABLE)
        self._handle(StartRequested())

    def stop(self) -> None:
        self._handle(StopRequested())

    # ---- recording (loop thread) ----------------------------------------------------------

    def start_recording(self) -> bool:
        """Switch recording on; False when storage cannot take it now (it stays off)."""
        if self._storage is None:
            return False
        if self._storage_state is not StorageState.OK:
            return False
        self._record_wanted = True
        self._note_camera_down_if_not_streaming()
        self._sync_recorder("recording switched on")
        return True

    def _note_camera_down_if_not_streaming(self) -> None:
        """Recording is wanted and storage is fine, but the camera delivers nothing: from now
        on the timeline's reason is the camera (not "switched off" or "disk full" any more)."""
        if self._storage is not None and self.supervisor.state is not CameraState.STREAMING:
            self._storage.interruption(self.camera.id, GapReason.CAMERA_DOWN)

    def stop_recording(self) -> None:
        """Switch recording off; the "off" event goes out once the file is final."""
        if not self._record_wanted:
            return
        self._record_wanted = False
        if self._storage is not None:
            self._storage.interruption(self.camera.id, GapReason.RECORDING_OFF)
        self._sync_recorder("recording switched off")

    def on_storage_checked(self, check: VolumeCheck) -> None:
        old = self._storage_state
        self._storage_state = check.state
        self._awaiting_storage_check = False
        if old is not check.state and check.state is not StorageState.OK and self._record_wanted:
            reason = (
                GapReason.DISK_FULL if check.state is StorageState.FULL
                else GapReason.STORAGE_UNAVAILABLE
            )  # fmt: skip
            if self._storage is not None:
                self._storage.interruption(self.camera.id, reason)
        if old is not check.state and check.state is StorageState.OK and self._record_wanted:
            self._note_camera_down_if_not_streaming()
        self._sync_recorder(f"storage {check.state.value}: {check.reason}")

    def _recording_possible(self) -> bool:
        return self._record_wanted and self._branch_possible()

    def _pre_record_s(self) -> float:
        return float(self._storage.config.pre_record_seconds) if self._storage else 0.0

    def _branch_possible(self) -> bool:
        return (
            self.pipeline is not None
            and self._storage is not None
            and self._storage_state is StorageState.OK
            and not self._awaiting_storage_check
            # One session at a time: the next starts once the previous one is gone.
            and not self._finishing
        )

    def _sync_recorder(self, reason: str) -> None:
        rec = self._recorder
        if self._recording_possible():
            if rec is None:
                self._attach_recorder(reason, armed=False)
            elif rec.armed:
                rec.start()  # the pre-record buffer flows into the file first
                self._log.info("recording on: %s (with %g s before)", reason, self._pre_record_s())
        elif self._pre_record_s() > 0 and self._branch_possible():
            # Not recording, but keep the last seconds buffered for the next start.
            if rec is not None and not rec.armed:
                self._finish_recorder(reason)
            elif rec is None:
                self._attach_recorder(reason, armed=True)
        elif rec is not None:
            self._finish_recorder(reason)
        self._refresh()

    def _attach_recorder(self, reason: str, armed: bool) -> None:
        storage, pipeline = self._storage, self.pipeline
        assert storage is not None and pipeline is not None
        cam = self.camera.id
        meta: dict[Path, tuple[float, float]] = {}
        clock = self._clock

        def opened(_rec: RecorderBranch, ev: FragmentOpened) -> None:
            start_utc = clock.wall().timestamp() - ev.age_s
            meta[ev.path] = (start_utc, ev.running_time_s)
            storage.segment_opened(cam, ev.path, start_utc)
            self._log.debug("segment opened: %s", ev.path.name)
            self._loop.call(self._refresh)

        def closed(_rec: RecorderBranch, ev: FragmentClosed) -> None:
            start_utc, rt0 = meta.pop(ev.path, (clock.wall().timestamp(), 0.0))
            storage.segment_closed(cam, ev.path, start_utc, max(0.0, ev.running_time_s - rt0))
            self._log.debug("segment closed: %s", ev.path.name)
            self._loop.call(self._refresh)

        pre_s = self._pre_record_s()
        # Until the camera's streams are known (a recording starts with the connection), the
        # branch holds its frames: the audio joins before anything reaches the file.
        known = pipeline.streams_known
        audio = [a for a in pipeline.audio if not a.dead] if known else []
        rec = RecorderBranch(
            storage.config.segment_seconds,
            lambda _idx: storage.new_segment_path(cam),
            opened,
            closed,
            armed=armed,
            pre_record_s=pre_s,
            hold=not known,
        )
        pipeline.sync_observer = self._sync_message
        rec.attach(pipeline.pipeline, pipeline.tee, [a.tee for a in audio])
        self._recorder = rec
        self._rec_audio = audio
        if armed:
            self._log.debug("pre-record buffer armed (%g s)", pre_s)
            return
        self._log.info("recording on: %s", reason)

    def _sync_message(self, message: object) -> bool:
        """Runs on the posting thread (see CameraPipeline.sync_observer)."""
        src = getattr(message, "src", None)
        for rec in (self._recorder, *self._finishing):
            if rec is not None and rec.owns(src):
                return rec.handle_sync_message(message)
        return False

    def _finish_recorder(self, reason: str, pipeline_going: bool = False) -> None:
        """End the recording session; "recording off" is published once the file is final."""
        rec = self._recorder
        if rec is None:
            return
        self._recorder = None
        self._finishing = (*self._finishing, rec)
        if pipeline_going:
            return  # _release_pipeline finishes it on the teardown worker before NULL
        log = self._log
        state_lock = self.pipeline.state_lock if self.pipeline is not None else threading.Lock()

        def work() -> None:
            ok = rec.finish_blocking(3.0 + rec.pre_record_s)
            with state_lock:  # never alongside the pipeline's own teardown
                rec.dispose()
            self._loop.call(self._recorder_finished, rec, ok, reason)

        log.debug("finishing recording: %s", reason)
        self._teardown.submit(work)

    def _recorder_finished(self, rec: RecorderBranch, ok: bool, reason: str) -> None:
        self._finishing = tuple(r for r in self._finishing if r is not rec)
        if rec.armed:
            self._log.debug("pre-record buffer dropped: %s", reason)
        else:
            if not ok:
                self._log.warning(
                    "recording did not finalise its file in time; it is repaired at the next start"
                )
            self._log.info("recording off: %s", reason)
        self._refresh()
        # A branch rebuilt after a fault, or storage that came back meanwhile.
        self._sync_recorder("recording resumed")

    def _refresh(self) -> None:
        """Publish a fresh status, and a RecordingChanged when recording flipped."""
        self.status = self._snapshot()
        recording = self.status.recording
        if recording != self._recording_reported:
            self._recording_reported = recording
            why = "recording" if recording else "recording stopped"
            self._publish(
                self.status, RecordingChanged(self.camera.id, recording, why, self.status)
            )
        else:
            self._publish(self.status, None)

    def add_viewer(self, callback: FrameCallback, token: int | None = None) -> int:
        """Start delivering decoded frames to ``callback`` (on a streaming thread)."""
        if token is None:
            self._next_viewer += 1
            token = self._next_viewer
        self._viewers[token] = callback
        self._attach_live()
        return token

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
        if self._live_spec is not None:
            # The sub-stream goes the way the main stream last worked.
            transport = (self._transport.working or self._transport.current).value
            stream = LiveStream(
                self._loop,
                replace(self._live_spec, transport=transport),
                self._live_format,
                self._deliver_frame,
                self._live_stream_failed,
                self._teardown,
            )
            self._live = stream
            stream.start()
            self._log.debug("live view on, from live_url")
            return
        branch = LiveBranch(self.camera.id, self._live_format, self._deliver_frame)
        self._live = branch
        branch.attach(self.pipeline.pipeline, self.pipeline.tee, self.pipeline.state_lock)
        self._log.debug("live view on")

    def _live_stream_failed(self, why: str) -> None:
        self._log.warning("live view (live_url) failed: %s; retrying in 5 s", why)
        self._live = None
        self._other_errors[ErrorKind.VIDEO_SINK] = (
            self._other_errors.get(ErrorKind.VIDEO_SINK, 0) + 1
        )
        if self._live_retry is not None:
            self._live_retry.cancel()
        self._live_retry = self._loop.timeout(5.0, self._attach_live)

    def _detach_live(self) -> None:
        if self._live_retry is not None:
            self._live_retry.cancel()
            self._live_retry = None
        live, self._live = self._live, None
        if isinstance(live, LiveStream):
            live.release()
        elif live is not None:
            live.detach()
        if live is not None:
            self._log.debug("live view off: nothing decoded")

    @property
    def live_attached(self) -> bool:
        return self._live is not None

    @property
    def live_source(self) -> str | None:
        """Where the live view decodes from: "live_url", "main" (the recorded stream), or None."""
        if self._live is None:
            return None
        return "live_url" if isinstance(self._live, LiveStream) else "main"

    # ---- supervisor plumbing --------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        try:
            commands = self.supervisor.handle(event)
        except Exception:
            # A bug must not leave the camera without a wake-up (stuck in "reconnecting").
            self._log.exception("supervisor failed on %s; waking it in 1 s", type(event).__name__)
            if self._timer is None:
                self._timer = self._loop.timeout(1.0, self._wake_cb)
            return
        self._apply(commands)

    def _apply(self, commands: list[Command]) -> None:
        changes: list[StateChanged] = []
        for cmd in commands:
            try:
                self._apply_one(cmd, changes)
            except Exception as exc:
                # Every other command still runs (above all the next wake-up).
                self._log.exception("%s failed", type(cmd).__name__)
                if isinstance(cmd, StartPipeline):
                    failed = PipelineFailed(
                        cmd.generation, ErrorKind.UNKNOWN, f"pipeline could not start: {exc}"
                    )
                    self._loop.call(self._handle, failed)
        for ch in changes:
            self._log.info("%s -> %s: %s", ch.old.value, ch.new.value, redact(ch.reason))
        self.status = self._snapshot()
        for ch in changes:
            event = CameraStateChanged(self.camera.id, ch.old, ch.new, ch.reason, self.status)
            self._publish(self.status, event)
        self._refresh()

    def _apply_one(self, cmd: Command, changes: list[StateChanged]) -> None:
        match cmd:
            case StartPipeline(generation=gen):
                self._start_pipeline(gen)
            case StopPipeline():
                self._release_pipeline()
            case ScheduleWake(delay_s=delay):
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = None if delay is None else self._loop.timeout(delay, self._wake_cb)
            case RunProbe(probe_id=pid, connect_only=connect_only):
                self._run_probe(pid, connect_only)
            case StateChanged():
                changes.append(cmd)

    def _wake_cb(self) -> None:
        self._timer = None
        self._handle(Woke())

    def _run_probe(self, probe_id: int, connect_only: bool) -> None:
        def done(reach: Reach) -> None:
            self._loop.call(self._handle, ProbeFinished(probe_id, reach))

        self._prober.submit(self.camera.url, self._settings.probe_timeout_s, connect_only, done)

    # ---- pipeline -------------------------------------------------------------------------

    def _start_pipeline(self, generation: int) -> None:
        self._release_pipeline()
        self._seen = (0, 0)
        self._rtp_seen = (0, 0)
        self._last_frame_at = None
        self._first_frame_at = None
        self._gen_had_video = False
        self._gen_judged = False
        spec = replace(self._spec, transport=self._transport.current.value)
        self.pipeline = CameraPipeline(
            self._loop,
            spec,
            generation,
            on_first_frame=self._on_first_frame,
            on_fault=self._on_fault,
            teardown=self._teardown,
            on_streams_known=self._on_streams_known,
        )
        self._log.debug(
            "starting pipeline generation %d over %s", generation, spec.transport.upper()
        )
        self.pipeline.start()
        self._attach_live()
        self._sync_recorder("camera connecting")

    def _release_pipeline(self) -> None:
        if self.pipeline is not None:
            if self._collect_stats():
                self._last_frame_at = self._clock.monotonic()
            stopped = self.supervisor.state in (CameraState.STOPPED, CameraState.DISABLED)
            if not stopped and not self._gen_judged:
                # Ended without a fault of its own: no video within the connect timeout, or
                # a stall.
                self._gen_judged = True
                note = self._transport.attempt_failed(None, self._gen_had_video)
                if note is not None:
                    self._log.info("%s", note)
            if isinstance(self._live, LiveStream):
                self._detach_live()
            self._live = None  # a branch goes down with its pipeline
            rec = self._recorder
            before_null = None
            if rec is not None:
                stopping = self.supervisor.state in (CameraState.STOPPED, CameraState.FAILED)
                why = "camera stopped" if stopping else "camera down"
                self._finish_recorder(why, pipeline_going=True)
                if self._storage is not None and self._record_wanted and not stopping:
                    # The outage began with the last frame, not when it was noticed (a stall
                    # is noticed stall_timeout_s later, a silent server ~25 s later).
                    self._storage.interruption(
                        self.camera.id, GapReason.CAMERA_DOWN, self._last_frame_wall()
                    )

                def before_null() -> None:
                    ok = rec.finish_blocking(3.0 + rec.pre_record_s)
                    self._loop.call(self._recorder_finished, rec, ok, why)

            self.pipeline.release(before_null)
            self.pipeline = None

    def _last_frame_wall(self) -> float | None:
        """UTC time of the last frame seen (to a poll interval), None if none this generation."""
        if self._last_frame_at is None:
            return None
        return self._clock.wall().timestamp() - (self._clock.monotonic() - self._last_frame_at)

    def _on_streams_known(self, generation: int) -> None:
        pipeline = self.pipeline
        if pipeline is None or pipeline.generation != generation:
            return
        for what in pipeline.skipped:
            if what not in self._skipped_noted:
                self._skipped_noted.add(what)
                self._log.info("%s is not recorded (not a codec a segment holds untouched)", what)
        self._audio_seen = {}
        rec = self._recorder
        if rec is not None and rec.holding:
            audio = [a for a in pipeline.audio if not a.dead]
            rec.open_streams([a.tee for a in audio])
            self._rec_audio = audio
            if audio:
                self._log.debug("recording audio: %s", pipeline.audio_codec)
        pipeline.open_audio()

    def _on_first_frame(self, generation: int) -> None:
        self._last_frame_at = self._first_frame_at = self._clock.monotonic()
        self._gen_had_video = True
        self._transport.streaming()
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
            switch = None
            if generation == self.supervisor.generation and not self._gen_judged:
                # The first fault of an attempt tells the chooser how its transport did.
                self._gen_judged = True
                switch = self._transport.attempt_failed(kind, self._gen_had_video)
                if switch is not None:
                    self._log.info("%s", switch)
            message = self._transport.refusal_message(kind) or fault.message
            self._handle(PipelineFailed(generation, kind, message, other_transport=bool(switch)))
            return
        # Faults of the recording and live branches never restart the camera.
        self._other_errors[kind] = self._other_errors.get(kind, 0) + 1
        self._log.warning("%s fault (%s): %s", kind.value, recovery.value, fault.describe())
        if generation != self.supervisor.generation:
            return
        if fault.origin is Origin.RECORDER and (
            self._recorder is None or self._recorder.bin.get_name() != fault.branch
        ):
            return  # a late error of a session already being closed
        if recovery is Recovery.REBUILD_LIVE:
            self._detach_live()
            self._attach_live()
        elif recovery is Recovery.REBUILD_RECORDER:
            self._finish_recorder(f"rebuilding after {fault.describe()}")
        if recovery in (Recovery.PAUSE_RECORDING_STORAGE, Recovery.PAUSE_RECORDING_DISK_FULL):
            self._storage_fault(recovery)
        self.status = self._snapshot()
        self._publish(self.status, None)

    def _storage_fault(self, recovery: Recovery) -> None:
        """A recorder hit a storage error: stop this session (its valve is already closed),
        let the storage service look, and resume in a new file if it says so."""
        storage = self._storage
        if storage is None or self._awaiting_storage_check:
            return
        self._awaiting_storage_check = True
        self._finish_recorder(f"storage error ({recovery.value})")

        def checked(check: VolumeCheck) -> None:
            self._loop.call(self.on_storage_checked, check)

        if recovery is Recovery.PAUSE_RECORDING_DISK_FULL:
            storage.report_disk_full(checked)
        else:
            storage.check_now(checked)

    # ---- stats and stall watch (called by the engine's poll timer) -------------------------

    def _collect_stats(self) -> bool:
        """Fold the pipeline's counters into the totals; True when frames arrived."""
        if self.pipeline is None:
            return False
        lost, late = self.pipeline.rtp_stats()
        self._rtp_lost += max(0, lost - self._rtp_seen[0])
        self._rtp_late += max(0, late - self._rtp_seen[1])
        self._rtp_seen = (lost, late)
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
        self._watch_recorder(now)
        self._watch_audio(now)
        first = self._first_frame_at
        if (
            pipeline is not None
            and not pipeline.streams_known
            and first is not None
            and now - first >= STREAMS_KNOWN_GRACE_S
        ):
            # rtspsrc always says "no more pads"; should it not, video must not wait for ever.
            pipeline.streams_known = True
            self._on_streams_known(pipeline.generation)
        self.status = self._snapshot()
        self._publish(self.status, None)

    def _watch_recorder(self, now: float) -> None:
        """A recording branch that stops producing output is a failure too: rebuild it."""
        rec = self._recorder
        streaming = self.supervisor.state is CameraState.STREAMING
        video_flows = self._last_frame_at is not None and now - self._last_frame_at < 2.0
        if rec is None or not rec.gate_passed or not streaming or not video_flows:
            self._rec_progress = ()
            return
        size = -1
        if rec.current is not None:
            try:
                size = rec.current.stat().st_size
            except OSError:
                size = -1
        mark = (id(rec), rec.current, size)
        if mark != self._rec_progress:
            self._rec_progress, self._rec_progress_at = mark, now
        elif now - self._rec_progress_at >= RECORDER_STALL_S:
            self._log.warning(
                "recording stalled: no output for %.0f s while video arrives; starting a new file",
                now - self._rec_progress_at,
            )
            self._other_errors[ErrorKind.UNKNOWN] = self._other_errors.get(ErrorKind.UNKNOWN, 0) + 1
            self._rec_progress = ()
            self._finish_recorder("recording stalled")

    def _watch_audio(self, now: float) -> None:
        """An audio stream that stops while video flows is ended in the recording, which goes
        on with video alone; new sessions of this connection leave it out."""
        rec = self._recorder
        video_flows = self._last_frame_at is not None and now - self._last_frame_at < 1.0
        if rec is None or not self._rec_audio:
            return
        for i, stream in enumerate(self._rec_audio):
            if rec.audio_ended[i]:
                continue
            count = stream.buffers()
            seen = self._audio_seen.get(id(stream))
            if seen is None or seen[0] != count or not video_flows:
                self._audio_seen[id(stream)] = (count, now)
                continue
            if now - seen[1] >= AUDIO_STALL_S:
                stream.dead = True
                rec.end_audio(i)
                self._other_errors[ErrorKind.UNKNOWN] = (
                    self._other_errors.get(ErrorKind.UNKNOWN, 0) + 1
                )
                self._log.warning(
                    "%s audio stopped (nothing for %.0f s while video arrives); recording "
                    "video alone until the camera reconnects",
                    stream.codec,
                    now - seen[1],
                )

    def _current_segment(self) -> str | None:
        rec, storage = self._recorder, self._storage
        if rec is None or rec.current is None or storage is None:
            return None
        try:
            return rec.current.relative_to(storage.root).as_posix()
        except ValueError:
            return None

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
            # Still "recording" while a closing session finalises its file: "off" is reported
            # only once the file is final.
            recording=(self._recorder is not None and not self._recorder.armed)
            or any(not r.armed for r in self._finishing),
            recording_wanted=self._record_wanted,
            storage_state=self._storage_state.value if self._storage_state else "none",
            current_segment=self._current_segment(),
            codec=self.pipeline.codec if self.pipeline is not None else None,
            audio_codec=self.pipeline.audio_codec if self.pipeline is not None else None,
            transport=self._transport.current.value,
            rtp_packets_lost=self._rtp_lost,
            rtp_packets_late=self._rtp_late,
            frames=self._frames,
            bytes=self._bytes,
            fps=fps if streaming else 0.0,
            bitrate_bps=bps if streaming else 0.0,
            disconnects=view.counters.disconnects,
            reconnect_attempts=view.counters.reconnect_attempts,
            stalls=view.counters.stalls,
            errors=tuple(sorted(errors.items(), key=lambda kv: kv[0].value)),
        )
