"""The recording controller: a pure state machine for one camera's recording.

It sits beside :class:`~nvr_gstreamer.camera.supervisor.CameraSupervisor` and works the same
way: events in (what happened), commands out (what to do), time from the injected clock, no
``gi``, no threads. The runtime turns GStreamer and storage callbacks into these events and the
commands into calls on recorder branches and the storage service.

What it decides:

* **Sessions.** A recording session is one recorder branch (one splitmuxsink), identified by a
  number. At most one is current; sessions being finished (their files finalised) are
  *finishing*, and the next session starts only once they are gone — two splitmuxsinks never
  share a camera's tee.
* **Pre-record.** With ``pre_record_s > 0`` and recording off, an *armed* session keeps the
  last seconds buffered; switching recording on starts writing it, those seconds first.
* **Storage faults.** A storage error of the current session ends it and asks the storage
  service to look (:class:`CheckStorage`); no new session starts until the answer comes.
* **The recorder watchdog.** A session whose output stops growing for ``stall_s`` while video
  flows is ended (and a fresh one starts); an audio input that delivers nothing for
  ``audio_stall_s`` while video flows is ended alone, so the recording goes on with video.
* **Gap bookkeeping.** Every time recording stops for a reason the timeline shows, it says so
  (:class:`NoteGap`): switched off, disk full, storage unavailable, camera down (dated back to
  the last frame), no motion.
* **Events only** (``events_only``): recording switched on writes only while motion is on
  (:class:`MotionChanged`, which the runtime sends at an event's start and
  ``post_record_seconds`` after its end); the armed pre-record session keeps the seconds
  before. In between, the timeline says "no motion".

"Recording" in the status stays true while a closing session finalises its file: "off" is
reported only once the file is final.

Longer than ~300 lines: most of it is the event and command types, which document the contract;
the logic itself is about 200 lines.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from nvr_gstreamer.camera.errors import Recovery
from nvr_gstreamer.core.clock import Clock
from nvr_gstreamer.storage.timeline import GapReason
from nvr_gstreamer.storage.volume import StorageState

# A recording whose file stops growing this long while video arrives is rebuilt. Long enough
# for the longest GOP a camera sends (splitmuxsink writes a whole GOP at once).
RECORDER_STALL_S = 15.0
# An audio stream that delivers nothing this long while video flows is ended in the recording
# (splitmuxsink would otherwise hold every file open waiting for it, and lose the video).
AUDIO_STALL_S = 2.0
# Video counts as flowing when its last frame is younger than this (watchdog, audio watch).
_VIDEO_FLOWS_S = 2.0
_VIDEO_FLOWS_AUDIO_S = 1.0


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CameraStarted:
    """The camera was started: the timeline learns why nothing is recorded, if so."""

    enabled: bool = True  # a disabled camera records nothing and explains nothing


@dataclass(frozen=True, slots=True)
class RecordingSwitched:
    on: bool


@dataclass(frozen=True, slots=True)
class MotionChanged:
    """record_mode events: footage is wanted from now (an event began) or no longer."""

    active: bool


@dataclass(frozen=True, slots=True)
class StorageChecked:
    state: StorageState
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CameraStreaming:
    """The camera's supervisor entered (True) or left (False) the streaming state."""

    streaming: bool


@dataclass(frozen=True, slots=True)
class PipelineStarted:
    """A new pipeline generation exists: sessions can attach to its tee."""


@dataclass(frozen=True, slots=True)
class PipelineEnding:
    """The pipeline goes away (camera down or stopped); the current session goes with it."""

    stopping: bool  # the camera was stopped (or gave up), not lost
    last_frame_utc: float | None  # when its last frame arrived, None if none came


@dataclass(frozen=True, slots=True)
class SessionFinished:
    session: int
    ok: bool  # the file was finalised in time


@dataclass(frozen=True, slots=True)
class SessionFailed:
    """A fault of a session's branch, with the recovery the classification table chose."""

    session: int
    recovery: Recovery
    why: str


@dataclass(frozen=True, slots=True)
class Polled:
    """The periodic look at the current session.

    ``output``: a mark that changes while the file grows (e.g. its path and bytes written), None
    before the session wrote anything. ``audio``: per audio input of the current session, the
    buffers it has delivered so far, or None once ended."""

    video_age_s: float | None  # since the last video frame; None when none arrived
    output: Hashable | None
    audio: Sequence[int | None] = ()


RecordingEvent = (
    CameraStarted
    | RecordingSwitched
    | MotionChanged
    | StorageChecked
    | CameraStreaming
    | PipelineStarted
    | PipelineEnding
    | SessionFinished
    | SessionFailed
    | Polled
)


# ---- commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttachSession:
    """Build a recorder branch on the camera's tee. ``armed``: buffer, do not write yet."""

    session: int
    armed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class StartWriting:
    """The armed session writes from now on (its buffered seconds first)."""

    session: int
    reason: str


@dataclass(frozen=True, slots=True)
class FinishSession:
    """End a session and finalise its file; answer with :class:`SessionFinished`.

    ``with_pipeline``: the pipeline is going too; finish it just before the pipeline's NULL."""

    session: int
    reason: str
    with_pipeline: bool = False
    stalled_s: float | None = None  # ended by the watchdog after this long without output


@dataclass(frozen=True, slots=True)
class EndAudio:
    """End one audio input of the session; the recording goes on with video alone."""

    session: int
    index: int
    silent_s: float


@dataclass(frozen=True, slots=True)
class NoteGap:
    """From ``at_utc`` (None: now) on, footage is missing for ``reason``."""

    reason: GapReason
    at_utc: float | None = None


@dataclass(frozen=True, slots=True)
class CheckStorage:
    """Ask the storage service to look at the volume; answer with :class:`StorageChecked`."""

    disk_full: bool  # the recorder said "no space left" (retention may free some first)


RecordingCommand = AttachSession | StartWriting | FinishSession | EndAudio | NoteGap | CheckStorage


@dataclass(slots=True)
class _Session:
    number: int
    armed: bool


class RecordingController:
    def __init__(
        self,
        clock: Clock,
        *,
        has_storage: bool,
        storage_state: StorageState | None,
        wanted: bool,
        pre_record_s: float = 0.0,
        events_only: bool = False,
        stall_s: float = RECORDER_STALL_S,
        audio_stall_s: float = AUDIO_STALL_S,
    ) -> None:
        self._clock = clock
        self._has_storage = has_storage
        self.storage_state = storage_state if has_storage else None
        self.wanted = wanted and has_storage
        self.pre_record_s = pre_record_s if has_storage else 0.0
        self.events_only = events_only
        self.motion = False  # events only: an event (or its post-record time) is on
        self._stall_s = stall_s
        self._audio_stall_s = audio_stall_s
        self._awaiting_check = False
        self._connected = False  # a pipeline exists
        self._streaming = False
        self._current: _Session | None = None
        self._finishing: dict[int, bool] = {}  # session → armed
        self._numbers = 0
        self._progress: tuple[int, Hashable] | None = None  # (session, output mark)
        self._progress_at = 0.0
        self._audio_seen: dict[int, tuple[int, float]] = {}  # input → (buffers, since)

    # ---- what the status shows ------------------------------------------------------------

    @property
    def recording(self) -> bool:
        """Writing a file, or finalising one (an armed session writes nothing)."""
        current = self._current is not None and not self._current.armed
        return current or any(not armed for armed in self._finishing.values())

    @property
    def session(self) -> int | None:
        """The current session, armed or writing."""
        return self._current.number if self._current is not None else None

    @property
    def writing_wanted(self) -> bool:
        """Recording is on, and (events only) motion asks for footage now."""
        return self.wanted and (self.motion or not self.events_only)

    @property
    def accepts_recording(self) -> bool:
        """Whether switching recording on would be taken now (storage is fine)."""
        return self.storage_state is StorageState.OK

    @property
    def armed(self) -> bool:
        return self._current is not None and self._current.armed

    # ---- events ---------------------------------------------------------------------------

    def handle(self, event: RecordingEvent) -> list[RecordingCommand]:
        match event:
            case CameraStarted(enabled=enabled):
                return self._on_camera_started() if enabled else []
            case RecordingSwitched(on=on):
                return self._on_switched(on)
            case MotionChanged(active=active):
                return self._on_motion(active)
            case StorageChecked():
                return self._on_storage_checked(event)
            case CameraStreaming(streaming=streaming):
                was, self._streaming = self._streaming, streaming
                if streaming and not was and self._idle_for_motion():
                    return [NoteGap(GapReason.NO_MOTION)]  # back, and nothing moves
                return []
            case PipelineStarted():
                self._connected = True
                return self._sync("camera connecting")
            case PipelineEnding():
                return self._on_pipeline_ending(event)
            case SessionFinished():
                return self._on_finished(event)
            case SessionFailed():
                return self._on_failed(event)
            case Polled():
                return self._on_polled(event)

    def _on_camera_started(self) -> list[RecordingCommand]:
        if not self._has_storage:
            return []
        if not self.wanted:
            return [NoteGap(GapReason.RECORDING_OFF)]
        reason = _storage_gap(self.storage_state)
        if reason is None and not self.writing_wanted:
            reason = GapReason.NO_MOTION
        return [NoteGap(reason)] if reason is not None else []

    def _on_switched(self, on: bool) -> list[RecordingCommand]:
        if on:
            if not self.accepts_recording or self.wanted:
                return []  # storage cannot take it now (it stays off), or already on
            self.wanted = True
            return [*self._camera_down_unless_streaming(), *self._sync("recording switched on")]
        if not self.wanted:
            return []
        self.wanted = False
        return [NoteGap(GapReason.RECORDING_OFF), *self._sync("recording switched off")]

    def _camera_down_unless_streaming(self) -> list[RecordingCommand]:
        """Recording is wanted and storage is fine, but the camera delivers nothing: from now
        on the timeline's reason is the camera (not "switched off" or "disk full" any more).
        Events only, without motion: the reason is that nothing moves."""
        if not self.writing_wanted:
            return [NoteGap(GapReason.NO_MOTION)]
        return [] if self._streaming else [NoteGap(GapReason.CAMERA_DOWN)]

    def _on_motion(self, active: bool) -> list[RecordingCommand]:
        if not self.events_only or active == self.motion:
            return []
        self.motion = active
        if not self.wanted or self.storage_state is not StorageState.OK:
            return []  # the gap keeps its reason (switched off, disk full, ...)
        if active:
            return [*self._camera_down_unless_streaming(), *self._sync("motion")]
        return [NoteGap(GapReason.NO_MOTION), *self._sync("no motion")]

    def _on_storage_checked(self, event: StorageChecked) -> list[RecordingCommand]:
        old, self.storage_state = self.storage_state, event.state
        self._awaiting_check = False
        out: list[RecordingCommand] = []
        if old is not event.state and self.wanted:
            reason = _storage_gap(event.state)
            out += [NoteGap(reason)] if reason is not None else self._camera_down_unless_streaming()
        why = f"storage {event.state.value}: {event.reason}" if event.reason else "storage checked"
        return out + self._sync(why)

    def _idle_for_motion(self) -> bool:
        """Events only: recording is on and storage fine, but nothing moves."""
        ok = self.storage_state is StorageState.OK and not self._awaiting_check
        return self.events_only and self.wanted and ok and not self.motion

    def _on_pipeline_ending(self, event: PipelineEnding) -> list[RecordingCommand]:
        self._connected = False
        current = self._current
        if current is None and not self._idle_for_motion():
            return []
        why = "camera stopped" if event.stopping else "camera down"
        out: list[RecordingCommand] = []
        if current is not None:
            out.append(self._finish(why, with_pipeline=True))
        if self.wanted and not event.stopping:
            # The outage began with the last frame, not when it was noticed (a stall is
            # noticed stall_timeout_s later, a silent server ~25 s later).
            out.append(NoteGap(GapReason.CAMERA_DOWN, event.last_frame_utc))
        return out

    def _on_finished(self, event: SessionFinished) -> list[RecordingCommand]:
        if self._finishing.pop(event.session, None) is None:
            return []
        # A session rebuilt after a fault, or storage that came back meanwhile.
        return self._sync("recording resumed")

    def _on_failed(self, event: SessionFailed) -> list[RecordingCommand]:
        if self._current is None or self._current.number != event.session:
            return []  # a late error of a session already being finished
        if event.recovery is Recovery.REBUILD_RECORDER:
            return [self._finish(f"rebuilding after {event.why}")]
        disk_full = event.recovery is Recovery.PAUSE_RECORDING_DISK_FULL
        if not disk_full and event.recovery is not Recovery.PAUSE_RECORDING_STORAGE:
            return []
        if self._awaiting_check:
            return []
        # The branch's valve is already closed; end the session, let storage look, and resume
        # in a new file if it says so.
        self._awaiting_check = True
        finish = self._finish(f"storage error ({event.recovery.value})")
        return [finish, CheckStorage(disk_full=disk_full)]

    def _on_polled(self, event: Polled) -> list[RecordingCommand]:
        now = self._clock.monotonic()
        return self._watch_output(event, now) or self._watch_audio(event, now)

    def _watch_output(self, event: Polled, now: float) -> list[RecordingCommand]:
        """A session that stops producing output is a failure too: rebuild it."""
        current, age = self._current, event.video_age_s
        video_flows = age is not None and age < _VIDEO_FLOWS_S
        if current is None or event.output is None or not self._streaming or not video_flows:
            self._progress = None
            return []
        mark = (current.number, event.output)
        if mark != self._progress:
            self._progress, self._progress_at = mark, now
            return []
        silent = now - self._progress_at
        if silent < self._stall_s:
            return []
        self._progress = None
        return [self._finish("recording stalled", stalled_s=silent)]

    def _watch_audio(self, event: Polled, now: float) -> list[RecordingCommand]:
        """An audio input that stops while video flows is ended; the recording goes on."""
        current, age = self._current, event.video_age_s
        if current is None:
            return []
        video_flows = age is not None and age < _VIDEO_FLOWS_AUDIO_S
        out: list[RecordingCommand] = []
        for index, count in enumerate(event.audio):
            if count is None:
                continue
            seen = self._audio_seen.get(index)
            if seen is None or seen[0] != count or not video_flows:
                self._audio_seen[index] = (count, now)
                continue
            if now - seen[1] >= self._audio_stall_s:
                out.append(EndAudio(current.number, index, now - seen[1]))
        return out

    # ---- sessions -------------------------------------------------------------------------

    def _session_possible(self) -> bool:
        return (
            self._connected
            and self.storage_state is StorageState.OK
            and not self._awaiting_check
            # One session at a time: the next starts once the previous one is gone.
            and not self._finishing
        )

    def _sync(self, reason: str) -> list[RecordingCommand]:
        """Bring the sessions in line with what is wanted and possible."""
        current, possible = self._current, self._session_possible()
        if self.writing_wanted and possible:
            if current is None:
                return [self._attach(reason, armed=False)]
            if current.armed:
                current.armed = False
                return [StartWriting(current.number, reason)]
            return []
        if self.pre_record_s > 0 and possible:
            # Not recording, but keep the last seconds buffered for the next start.
            if current is None:
                return [self._attach(reason, armed=True)]
            if not current.armed:
                return [self._finish(reason)]
            return []
        if current is not None:
            return [self._finish(reason)]
        return []

    def _attach(self, reason: str, armed: bool) -> AttachSession:
        self._numbers += 1
        self._current = _Session(self._numbers, armed)
        self._audio_seen = {}
        self._progress = None
        return AttachSession(self._numbers, armed, reason)

    def _finish(
        self, reason: str, with_pipeline: bool = False, stalled_s: float | None = None
    ) -> FinishSession:
        current = self._current
        assert current is not None
        self._current = None
        self._finishing[current.number] = current.armed
        return FinishSession(current.number, reason, with_pipeline, stalled_s)


def _storage_gap(state: StorageState | None) -> GapReason | None:
    if state is StorageState.FULL:
        return GapReason.DISK_FULL
    if state is StorageState.UNAVAILABLE:
        return GapReason.STORAGE_UNAVAILABLE
    return None
