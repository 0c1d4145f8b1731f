"""RecordingController scripts with a fake clock: sessions, pre-record, storage faults, the
recorder watchdog and the timeline's gap reasons, in milliseconds."""

from __future__ import annotations

from collections.abc import Sequence

from nvr_gstreamer.camera.errors import Recovery
from nvr_gstreamer.camera.recording import (
    AUDIO_STALL_S,
    RECORDER_STALL_S,
    AttachSession,
    CameraStarted,
    CameraStreaming,
    CheckStorage,
    EndAudio,
    FinishSession,
    MotionChanged,
    NoteGap,
    PipelineEnding,
    PipelineStarted,
    Polled,
    RecordingCommand,
    RecordingController,
    RecordingEvent,
    RecordingSwitched,
    SessionFailed,
    SessionFinished,
    StartWriting,
    StorageChecked,
)
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.storage.timeline import GapReason
from nvr_gstreamer.storage.volume import StorageState

OK, FULL, GONE = StorageState.OK, StorageState.FULL, StorageState.UNAVAILABLE


class Harness:
    def __init__(
        self,
        wanted: bool = True,
        state: StorageState | None = OK,
        pre_record_s: float = 0.0,
        has_storage: bool = True,
        events_only: bool = False,
    ) -> None:
        self.clock = FakeClock()
        self.rec = RecordingController(
            self.clock,
            has_storage=has_storage,
            storage_state=state,
            wanted=wanted,
            pre_record_s=pre_record_s,
            events_only=events_only,
        )

    def send(self, *events: RecordingEvent) -> list[RecordingCommand]:
        out: list[RecordingCommand] = []
        for event in events:
            out += self.rec.handle(event)
        return out

    def connect(self) -> list[RecordingCommand]:
        """A pipeline comes up and streams."""
        return self.send(PipelineStarted(), CameraStreaming(True))

    def finish_all(self, commands: Sequence[RecordingCommand]) -> list[RecordingCommand]:
        out: list[RecordingCommand] = []
        for cmd in commands:
            if isinstance(cmd, FinishSession):
                out += self.send(SessionFinished(cmd.session, ok=True))
        return out

    def poll(self, advance_s: float, output: object, audio: Sequence[int | None] = ()) -> list:
        self.clock.advance(advance_s)
        return self.send(Polled(0.1, output, audio))  # type: ignore[arg-type]


def gaps(commands: Sequence[RecordingCommand]) -> list[GapReason]:
    return [c.reason for c in commands if isinstance(c, NoteGap)]


def kinds(commands: Sequence[RecordingCommand]) -> list[str]:
    return [type(c).__name__ for c in commands]


# ---- starting, switching on and off ---------------------------------------------------------


def test_a_camera_that_records_starts_a_session_when_its_pipeline_comes_up() -> None:
    h = Harness()
    assert h.send(CameraStarted()) == []  # recording wanted, storage fine: nothing to explain
    assert h.send(PipelineStarted()) == [AttachSession(1, armed=False, reason="camera connecting")]
    assert h.rec.recording and h.rec.session == 1


def test_the_timeline_learns_at_start_why_nothing_is_recorded() -> None:
    assert gaps(Harness(wanted=False).send(CameraStarted())) == [GapReason.RECORDING_OFF]
    assert gaps(Harness(state=FULL).send(CameraStarted())) == [GapReason.DISK_FULL]
    assert gaps(Harness(state=GONE).send(CameraStarted())) == [GapReason.STORAGE_UNAVAILABLE]
    assert Harness(wanted=False).send(CameraStarted(enabled=False)) == []
    assert Harness(wanted=False, has_storage=False).send(CameraStarted()) == []


def test_without_storage_nothing_is_ever_recorded() -> None:
    h = Harness(has_storage=False, pre_record_s=5)
    assert not h.rec.wanted
    assert h.connect() == []
    assert h.send(RecordingSwitched(True)) == []
    assert not h.rec.wanted and not h.rec.recording


def test_switching_off_finishes_the_session_and_says_so_once_the_file_is_final() -> None:
    h = Harness()
    h.connect()
    out = h.send(RecordingSwitched(False))
    assert out == [
        NoteGap(GapReason.RECORDING_OFF),
        FinishSession(1, "recording switched off"),
    ]
    assert h.rec.recording  # still finalising its file
    assert h.send(SessionFinished(1, ok=True)) == []
    assert not h.rec.recording and h.rec.session is None
    assert h.send(RecordingSwitched(False)) == []  # already off: nothing new


def test_switching_on_while_the_camera_is_down_blames_the_camera() -> None:
    h = Harness(wanted=False)
    h.send(PipelineStarted())  # connecting, not streaming yet
    out = h.send(RecordingSwitched(True))
    assert out == [
        NoteGap(GapReason.CAMERA_DOWN),
        AttachSession(1, armed=False, reason="recording switched on"),
    ]
    h2 = Harness(wanted=False)
    h2.connect()
    assert gaps(h2.send(RecordingSwitched(True))) == []  # streaming: footage follows at once


def test_switching_on_is_refused_while_storage_cannot_take_it() -> None:
    for state in (FULL, GONE):
        h = Harness(wanted=False, state=state)
        h.connect()
        assert h.send(RecordingSwitched(True)) == []
        assert not h.rec.wanted and not h.rec.accepts_recording
    h = Harness(wanted=False)
    assert h.rec.accepts_recording
    assert h.send(RecordingSwitched(True)) == [NoteGap(GapReason.CAMERA_DOWN)]  # no pipeline
    assert h.rec.wanted and h.send(RecordingSwitched(True)) == []  # already on


def test_a_new_session_waits_until_the_previous_one_is_gone() -> None:
    h = Harness()
    h.connect()
    h.send(RecordingSwitched(False))
    assert kinds(h.send(RecordingSwitched(True))) == []  # the old file is still being finished
    assert h.send(SessionFinished(1, ok=False)) == [
        AttachSession(2, armed=False, reason="recording resumed")
    ]


def test_a_session_finished_twice_or_unknown_changes_nothing() -> None:
    h = Harness()
    h.connect()
    assert h.send(SessionFinished(7, ok=True)) == []
    assert h.rec.session == 1


# ---- pre-record -----------------------------------------------------------------------------


def test_pre_record_keeps_an_armed_session_and_starts_writing_it() -> None:
    h = Harness(wanted=False, pre_record_s=5)
    assert h.connect() == [AttachSession(1, armed=True, reason="camera connecting")]
    assert h.rec.armed and not h.rec.recording
    assert h.send(RecordingSwitched(True)) == [StartWriting(1, "recording switched on")]
    assert h.rec.recording and not h.rec.armed
    # Off again: this session ends, and once it is final a fresh armed one buffers again.
    out = h.send(RecordingSwitched(False))
    assert out == [NoteGap(GapReason.RECORDING_OFF), FinishSession(1, "recording switched off")]
    assert h.finish_all(out) == [AttachSession(2, armed=True, reason="recording resumed")]
    assert not h.rec.recording


def test_an_armed_session_finishing_is_not_recording() -> None:
    h = Harness(wanted=False, pre_record_s=5)
    h.connect()
    out = h.send(StorageChecked(FULL, "full"))
    assert out == [FinishSession(1, "storage full: full")]
    assert not h.rec.recording  # an armed session never wrote a file


# ---- the pipeline going and coming ----------------------------------------------------------


def test_a_lost_camera_ends_the_session_with_the_pipeline_and_dates_the_gap() -> None:
    h = Harness()
    h.connect()
    out = h.send(CameraStreaming(False), PipelineEnding(stopping=False, last_frame_utc=1234.5))
    assert out == [
        FinishSession(1, "camera down", with_pipeline=True),
        NoteGap(GapReason.CAMERA_DOWN, 1234.5),
    ]
    # Back: no session until the old one is final, then one on the new pipeline.
    assert h.send(PipelineStarted()) == []
    assert h.send(SessionFinished(1, ok=True)) == [
        AttachSession(2, armed=False, reason="recording resumed")
    ]


def test_a_stopped_camera_is_no_outage() -> None:
    h = Harness()
    h.connect()
    out = h.send(PipelineEnding(stopping=True, last_frame_utc=None))
    assert out == [FinishSession(1, "camera stopped", with_pipeline=True)]
    assert h.send(SessionFinished(1, ok=True)) == []  # no pipeline: nothing to attach


def test_a_pipeline_ending_without_a_session_notes_nothing() -> None:
    h = Harness(wanted=False)
    h.connect()
    assert h.send(PipelineEnding(stopping=False, last_frame_utc=5.0)) == []
    h2 = Harness(wanted=False, pre_record_s=3)
    h2.connect()  # an armed session: not wanted, so the outage is no gap of the recording
    assert h2.send(PipelineEnding(False, 5.0)) == [FinishSession(1, "camera down", True)]


# ---- storage --------------------------------------------------------------------------------


def test_disk_full_from_the_recorder_ends_the_session_and_asks_storage() -> None:
    h = Harness()
    h.connect()
    fault = SessionFailed(1, Recovery.PAUSE_RECORDING_DISK_FULL, "no space")
    out = h.send(fault)
    assert out == [
        FinishSession(1, "storage error (pause_recording_disk_full)"),
        CheckStorage(disk_full=True),
    ]
    assert h.send(SessionFinished(1, ok=False)) == []  # waits for storage's answer
    assert h.send(fault) == []  # a late error of a session already finished
    # Retention freed space: recording resumes in a new file, the gap was noted meanwhile.
    out = h.send(StorageChecked(FULL, "full"))
    assert gaps(out) == [GapReason.DISK_FULL]
    out = h.send(StorageChecked(OK, "ok"))
    assert out == [AttachSession(2, armed=False, reason="storage ok: ok")]


def test_a_storage_error_asks_storage_to_look_once() -> None:
    h = Harness()
    h.connect()
    out = h.send(SessionFailed(1, Recovery.PAUSE_RECORDING_STORAGE, "EIO"))
    assert out[-1] == CheckStorage(disk_full=False)
    h.send(SessionFinished(1, ok=False))
    assert h.send(StorageChecked(OK)) == [AttachSession(2, armed=False, reason="storage checked")]


def test_storage_answers_while_already_waiting_are_not_asked_twice() -> None:
    h = Harness()
    h.connect()
    h.send(SessionFailed(1, Recovery.PAUSE_RECORDING_STORAGE, "EIO"))
    assert h.send(SessionFinished(1, ok=False)) == []
    # Another session's error cannot come (none runs); the state answer unblocks.
    assert h.send(StorageChecked(GONE, "gone")) == [NoteGap(GapReason.STORAGE_UNAVAILABLE)]
    assert h.send(StorageChecked(GONE, "gone")) == []  # unchanged: nothing new


def test_storage_back_while_the_camera_is_down_blames_the_camera() -> None:
    h = Harness(state=FULL)
    h.send(PipelineStarted())
    assert h.send(StorageChecked(OK, "ok")) == [
        NoteGap(GapReason.CAMERA_DOWN),
        AttachSession(1, armed=False, reason="storage ok: ok"),
    ]


def test_storage_changes_note_no_gap_when_recording_is_off() -> None:
    h = Harness(wanted=False)
    h.connect()
    assert h.send(StorageChecked(FULL, "full")) == []
    assert h.send(StorageChecked(OK, "ok")) == []


def test_a_rebuild_fault_replaces_the_session() -> None:
    h = Harness()
    h.connect()
    out = h.send(SessionFailed(1, Recovery.REBUILD_RECORDER, "mux error"))
    assert out == [FinishSession(1, "rebuilding after mux error")]
    assert h.finish_all(out) == [AttachSession(2, armed=False, reason="recording resumed")]
    # Faults that are not the recorder's own do nothing to it.
    assert h.send(SessionFailed(2, Recovery.REBUILD_LIVE, "decoder")) == []
    assert h.send(SessionFailed(2, Recovery.RESTART_PIPELINE, "x")) == []


# ---- the watchdog ---------------------------------------------------------------------------


def test_a_session_whose_file_stops_growing_is_rebuilt() -> None:
    h = Harness()
    h.connect()
    assert h.poll(0.5, ("a.mkv", 100)) == []
    assert h.poll(RECORDER_STALL_S - 1, ("a.mkv", 100)) == []  # not yet
    out = h.poll(1.0, ("a.mkv", 100))
    assert out == [FinishSession(1, "recording stalled", stalled_s=RECORDER_STALL_S)]
    # A growing file never trips it.
    h2 = Harness()
    h2.connect()
    for n in range(40):
        assert h2.poll(1.0, ("a.mkv", n)) == []


def test_the_watchdog_waits_while_video_does_not_flow_or_nothing_was_written() -> None:
    h = Harness()
    h.connect()
    for _ in range(40):
        h.clock.advance(1.0)
        assert h.send(Polled(5.0, ("a.mkv", 1))) == []  # no video: nothing to write
        assert h.send(Polled(None, ("a.mkv", 1))) == []
        assert h.send(Polled(0.1, None)) == []  # the first keyframe has not come yet
    h.send(CameraStreaming(False))
    for _ in range(40):
        assert h.poll(1.0, ("a.mkv", 1)) == []  # not streaming: the supervisor handles it


def test_a_silent_audio_input_is_ended_alone() -> None:
    h = Harness()
    h.connect()
    assert h.poll(0.5, ("a", 1), audio=[10, 10]) == []
    assert h.poll(AUDIO_STALL_S - 0.5, ("a", 2), audio=[20, 10]) == []
    out = h.poll(0.5, ("a", 3), audio=[30, 10])
    assert out == [EndAudio(1, 1, AUDIO_STALL_S)]
    assert h.poll(5.0, ("a", 4), audio=[40, None]) == []  # ended: not watched any more


def test_audio_is_not_blamed_while_video_stops_too() -> None:
    h = Harness()
    h.connect()
    for _ in range(10):
        h.clock.advance(1.0)
        assert h.send(Polled(1.5, ("a", 1), [5])) == []


def test_audio_watch_starts_afresh_with_each_session() -> None:
    h = Harness()
    h.connect()
    h.poll(0.5, ("a", 1), audio=[10])
    h.poll(1.0, ("a", 2), audio=[10])
    out = h.send(SessionFailed(1, Recovery.REBUILD_RECORDER, "x"))
    h.finish_all(out)
    assert h.poll(1.5, ("b", 1), audio=[10]) == []  # the new session's input is new


# ---- boundaries and defaults ----------------------------------------------------------------


def test_no_pre_record_unless_asked_and_any_positive_pre_record_arms() -> None:
    default = RecordingController(FakeClock(), has_storage=True, storage_state=OK, wanted=False)
    assert default.handle(PipelineStarted()) == []
    assert not default.armed
    h = Harness(wanted=False, pre_record_s=0.5)
    assert h.connect() == [AttachSession(1, armed=True, reason="camera connecting")]


def test_switched_off_is_false_in_the_status() -> None:
    h = Harness()
    h.send(RecordingSwitched(False))
    assert h.rec.wanted is False


def test_video_flows_while_younger_than_its_limit() -> None:
    """The watchdog counts video younger than 2 s as flowing, the audio watch younger than 1 s
    (a frame interval of a slow camera, not an outage)."""
    h = Harness()
    h.connect()
    for n in range(40):
        h.clock.advance(1.0)
        assert h.send(Polled(2.0, ("a.mkv", 1), [n])) == []  # video just stopped: no blame
    h.clock.advance(1.0)
    assert h.send(Polled(1.9, ("a.mkv", 1), [41])) == []  # flowing: the watch begins
    h.clock.advance(RECORDER_STALL_S)
    out = h.send(Polled(1.9, ("a.mkv", 1), [42]))
    assert out == [FinishSession(1, "recording stalled", stalled_s=RECORDER_STALL_S)]
    h2 = Harness()
    h2.connect()
    for n in range(10):
        h2.clock.advance(1.0)
        assert h2.send(Polled(1.0, ("a.mkv", n), [5])) == []
    h2.clock.advance(AUDIO_STALL_S)  # silent since the last poll above, video flows now
    assert h2.send(Polled(0.9, ("a.mkv", 11), [5])) == [EndAudio(1, 0, AUDIO_STALL_S)]


def test_an_ended_audio_input_does_not_hide_a_later_one() -> None:
    h = Harness()
    h.connect()
    assert h.poll(0.5, ("a", 1), audio=[None, 10]) == []
    out = h.poll(AUDIO_STALL_S, ("a", 2), audio=[None, 10])
    assert out == [EndAudio(1, 1, AUDIO_STALL_S)]


def test_polls_without_a_current_session_do_nothing() -> None:
    h = Harness()
    h.connect()
    h.send(RecordingSwitched(False))  # session 1 is being finished; none is current
    for _ in range(40):
        assert h.poll(1.0, ("a.mkv", 1), audio=[10]) == []


# ---- record_mode events ----------------------------------------------------------------------


def test_events_only_writes_nothing_until_motion_and_says_no_motion() -> None:
    h = Harness(events_only=True, pre_record_s=5.0)
    assert gaps(h.send(CameraStarted())) == [GapReason.NO_MOTION]
    out = h.connect()
    assert [type(c) for c in out if not isinstance(c, NoteGap)] == [AttachSession]
    assert [c.armed for c in out if isinstance(c, AttachSession)] == [True]  # pre-record kept
    assert not h.rec.recording


def test_motion_writes_the_armed_seconds_then_no_motion_finishes_with_its_gap() -> None:
    h = Harness(events_only=True, pre_record_s=5.0)
    h.send(CameraStarted())
    armed = next(c for c in h.connect() if isinstance(c, AttachSession))
    out = h.send(MotionChanged(True))
    assert out == [StartWriting(armed.session, "motion")] and h.rec.recording
    assert h.send(MotionChanged(True)) == []  # already on
    out = h.send(MotionChanged(False))
    assert gaps(out) == [GapReason.NO_MOTION]
    assert [c.session for c in out if isinstance(c, FinishSession)] == [armed.session]
    # The file is final: a fresh armed session keeps the next event's seconds before.
    again = h.finish_all(out)
    assert [(type(c), getattr(c, "armed", None)) for c in again] == [(AttachSession, True)]


def test_events_only_without_pre_record_attaches_on_motion() -> None:
    h = Harness(events_only=True)
    h.send(CameraStarted())
    assert [c for c in h.connect() if not isinstance(c, NoteGap)] == []
    out = h.send(MotionChanged(True))
    assert [(type(c), getattr(c, "armed", None)) for c in out] == [(AttachSession, False)]


def test_motion_changes_nothing_in_continuous_mode_or_while_switched_off() -> None:
    h = Harness()
    h.send(CameraStarted())
    h.connect()
    assert h.send(MotionChanged(True), MotionChanged(False)) == [] and h.rec.recording
    off = Harness(events_only=True, wanted=False)
    assert gaps(off.send(CameraStarted())) == [GapReason.RECORDING_OFF]
    off.connect()
    assert off.send(MotionChanged(True)) == [] and not off.rec.recording
    # Switched on during motion: it writes at once; switched on without: "no motion".
    out = off.send(RecordingSwitched(True))
    assert [type(c) for c in out] == [AttachSession]
    quiet = Harness(events_only=True, wanted=False)
    quiet.send(CameraStarted())
    quiet.connect()
    assert gaps(quiet.send(RecordingSwitched(True))) == [GapReason.NO_MOTION]


def test_a_full_disk_keeps_its_reason_through_motion() -> None:
    h = Harness(events_only=True, state=FULL)
    assert gaps(h.send(CameraStarted())) == [GapReason.DISK_FULL]
    h.connect()
    assert h.send(MotionChanged(True), MotionChanged(False)) == []
    out = h.send(StorageChecked(OK))
    assert gaps(out) == [GapReason.NO_MOTION] and not h.rec.recording


def test_a_camera_lost_without_motion_is_down_and_back_is_no_motion_again() -> None:
    h = Harness(events_only=True)
    h.send(CameraStarted())
    h.connect()
    out = h.send(CameraStreaming(False), PipelineEnding(stopping=False, last_frame_utc=100.0))
    assert out == [NoteGap(GapReason.CAMERA_DOWN, 100.0)]
    out = h.connect()
    assert gaps(out) == [GapReason.NO_MOTION]
    # Stopped (not lost): no gap of the camera's.
    assert h.send(CameraStreaming(False), PipelineEnding(stopping=True, last_frame_utc=1.0)) == []


def test_the_default_is_continuous_and_motion_words_its_reasons() -> None:
    clock = FakeClock()
    rec = RecordingController(clock, has_storage=True, storage_state=OK, wanted=True)
    assert rec.handle(CameraStarted()) == []
    out = rec.handle(PipelineStarted()) + rec.handle(CameraStreaming(True))
    assert [type(c) for c in out] == [AttachSession]  # records at once, says no "no motion"
    h = Harness(events_only=True)
    h.send(CameraStarted())
    h.connect()
    started = h.send(MotionChanged(True))
    assert [c.reason for c in started if isinstance(c, AttachSession)] == ["motion"]
    ended = h.send(MotionChanged(False))
    assert [c.reason for c in ended if isinstance(c, FinishSession)] == ["no motion"]


def test_continuous_recording_never_says_no_motion() -> None:
    h = Harness()
    h.send(CameraStarted())
    assert gaps(h.connect()) == []
    out = h.send(CameraStreaming(False), PipelineEnding(stopping=False, last_frame_utc=5.0))
    assert gaps(out) == [GapReason.CAMERA_DOWN]
    assert gaps(h.finish_all(out) + h.connect()) == []


def test_events_only_on_a_full_disk_a_lost_camera_keeps_the_disk_s_reason() -> None:
    h = Harness(events_only=True, state=FULL)
    h.send(CameraStarted())
    h.connect()
    assert h.send(CameraStreaming(False), PipelineEnding(stopping=False, last_frame_utc=1.0)) == []


def test_motion_ending_before_any_began_changes_nothing() -> None:
    h = Harness(events_only=True)
    h.send(CameraStarted())
    h.connect()
    assert h.send(MotionChanged(False)) == [] and not h.rec.motion
