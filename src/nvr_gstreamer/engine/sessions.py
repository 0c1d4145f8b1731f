"""The recorder branches of one camera, by session number: carries out what the
:class:`~nvr_gstreamer.camera.recording.RecordingController` decides (loop thread)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.camera.media import (
    AudioInput,
    FragmentClosed,
    FragmentOpened,
    Media,
    RecorderLike,
    RecordingStorage,
    Scheduler,
)
from nvr_gstreamer.camera.recording import (
    AttachSession,
    CheckStorage,
    EndAudio,
    FinishSession,
    NoteGap,
    RecordingCommand,
    StartWriting,
)
from nvr_gstreamer.core.clock import Clock
from nvr_gstreamer.core.logsetup import CameraLogger
from nvr_gstreamer.storage.volume import VolumeCheck

# A file's start measured this far from where the session's first file puts it is a step of
# the wall clock (NTP, a manual change): the session takes the new offset from then on.
CLOCK_STEP_S = 1.0


def wall_offset(clock: Clock, samples: int = 5) -> float:
    """The wall clock minus the monotonic clock (s), from the tightest of a few readings
    (monotonic, wall, monotonic): a thread switch between two reads shows as a wide pair
    and is left out."""
    best: tuple[float, float] | None = None
    for _ in range(samples):
        before = clock.monotonic()
        wall = clock.wall().timestamp()
        after = clock.monotonic()
        if best is None or after - before < best[0]:
            best = (after - before, wall - (before + after) / 2)
    assert best is not None
    return best[1]


class WallAnchor:
    """Wall-clock start times for a session's files, all from one offset between the wall
    clock and the pipeline's running time, fixed at the session's first file.

    Measured afresh per file, a start carries the jitter of reading two clocks on a busy
    thread (seen: 55 ms, most of a frame, between two files of one recording); with one
    offset, consecutive files meet exactly where their frames do. A wall-clock step is
    followed (a measured offset more than ``CLOCK_STEP_S`` away)."""

    __slots__ = ("_offset",)

    def __init__(self) -> None:
        self._offset: float | None = None

    def start_utc(self, measured_utc: float, running_time_s: float) -> float:
        """The file's start, from its own measurement and its running time."""
        offset = measured_utc - running_time_s
        if self._offset is None or abs(offset - self._offset) > CLOCK_STEP_S:
            self._offset = offset
        return self._offset + running_time_s


class _Session:
    __slots__ = ("audio", "branch", "pipeline", "reason")

    def __init__(self, branch: RecorderLike, pipeline: Any, audio: list[AudioInput]) -> None:
        self.branch = branch
        self.pipeline = pipeline
        self.audio = audio  # the audio inputs, in the branch's order
        self.reason = ""  # why it is being finished


class RecorderSessions:
    def __init__(
        self,
        camera_id: str,
        scheduler: Scheduler,
        clock: Clock,
        media: Media,
        storage: RecordingStorage,
        log: CameraLogger,
        changed: Callable[[], None],
        finished: Callable[[int, bool], None],
        checked: Callable[[VolumeCheck], None],
        count_error: Callable[[ErrorKind], None],
    ) -> None:
        """Callbacks, all on the loop: ``changed`` when a file opened or closed,
        ``finished(session, ok)`` once a session's file is final, ``checked`` with the
        storage's answer to a check, ``count_error`` for a recorder that had to be helped."""
        self._checked = checked
        self._count_error = count_error
        self._camera_id = camera_id
        self._scheduler = scheduler
        self._clock = clock
        self._media = media
        self._storage = storage
        self._log = log
        self._changed = changed
        self._finished = finished
        self._sessions: dict[int, _Session] = {}

    def session_of(self, branch: object) -> int | None:
        return next((n for n, s in self._sessions.items() if s.branch is branch), None)

    # ---- commands -------------------------------------------------------------------------

    def apply(self, cmd: RecordingCommand, pipeline: Any) -> None:
        match cmd:
            case AttachSession():
                self.attach(cmd, pipeline)
            case StartWriting():
                self.start_writing(cmd)
            case FinishSession():
                if cmd.stalled_s is not None:
                    self._count_error(ErrorKind.UNKNOWN)
                self.finish(cmd)
            case EndAudio():
                self._count_error(ErrorKind.UNKNOWN)
                self.end_audio(cmd)
            case NoteGap(reason=reason, at_utc=at):
                self._storage.interruption(self._camera_id, reason, at)
            case CheckStorage(disk_full=disk_full):
                scheduler, checked = self._scheduler, self._checked

                def answer(check: VolumeCheck) -> None:  # on the storage worker
                    scheduler.call(checked, check)

                if disk_full:
                    self._storage.report_disk_full(answer)
                else:
                    self._storage.check_now(answer)

    def attach(self, cmd: AttachSession, pipeline: Any) -> None:
        storage, cam, clock, scheduler = (
            self._storage,
            self._camera_id,
            self._clock,
            self._scheduler,
        )
        starts: dict[Path, tuple[float, float]] = {}  # file → (start UTC, running time)
        anchor = WallAnchor()

        # Both run on the thread that posted splitmuxsink's message; storage queues the work.
        def opened(_branch: object, ev: FragmentOpened) -> None:
            measured = (
                wall_offset(clock) + ev.monotonic_s
                if ev.monotonic_s is not None
                else clock.wall().timestamp() - ev.age_s
            )
            start_utc = anchor.start_utc(measured, ev.running_time_s)
            starts[ev.path] = (start_utc, ev.running_time_s)
            storage.segment_opened(cam, ev.path, start_utc)
            scheduler.call(self._changed)

        def closed(_branch: object, ev: FragmentClosed) -> None:
            start_utc, rt0 = starts.pop(ev.path, (clock.wall().timestamp(), 0.0))
            storage.segment_closed(cam, ev.path, start_utc, max(0.0, ev.running_time_s - rt0))
            scheduler.call(self._changed)

        pre_s = storage.pre_record_seconds
        # Until the camera's streams are known (a recording starts with the connection), the
        # branch holds its frames: the audio joins before anything reaches the file.
        branch = self._media.recorder(
            storage.segment_seconds,
            lambda _index: storage.new_segment_path(cam),
            opened,
            closed,
            armed=cmd.armed,
            pre_record_s=pre_s,
            hold=not pipeline.streams_known,
        )
        audio = list(pipeline.live_audio())
        pipeline.attach(branch, audio)
        self._sessions[cmd.session] = _Session(branch, pipeline, audio)
        if cmd.armed:
            self._log.debug("pre-record buffer armed (%g s)", pre_s)
        else:
            self._log.info("recording on: %s", cmd.reason)

    def start_writing(self, cmd: StartWriting) -> None:
        session = self._sessions.get(cmd.session)
        if session is not None:
            session.branch.start()  # the pre-record buffer flows into the file first
            pre_s = session.branch.pre_record_s
            self._log.info("recording on: %s (with %g s before)", cmd.reason, pre_s)

    def finish(self, cmd: FinishSession) -> None:
        """End a session; :meth:`_done` hears when its file is final."""
        session = self._sessions.get(cmd.session)
        if session is None:
            self._scheduler.call(self._finished, cmd.session, True)
            return
        session.reason = cmd.reason
        if cmd.stalled_s is not None:
            self._log.warning(
                "recording stalled: no output for %.0f s while video arrives; starting a new file",
                cmd.stalled_s,
            )
        self._log.debug("finishing recording: %s", cmd.reason)
        number = cmd.session
        session.pipeline.detach(
            session.branch, lambda ok: self._done(number, ok), with_release=cmd.with_pipeline
        )

    def _done(self, number: int, ok: bool) -> None:
        session = self._sessions.pop(number, None)
        if session is not None:
            if session.branch.armed:
                self._log.debug("pre-record buffer dropped: %s", session.reason)
            else:
                if not ok:
                    self._log.warning(
                        "recording could not finalise its file (a write failed or it took "
                        "too long); it is repaired at the next start"
                    )
                self._log.info("recording off: %s", session.reason)
        self._finished(number, ok)

    def end_audio(self, cmd: EndAudio) -> None:
        session = self._sessions.get(cmd.session)
        if session is None or cmd.index >= len(session.audio):
            return
        stream = session.audio[cmd.index]
        stream.dead = True  # new sessions of this connection leave it out
        session.branch.end_audio(cmd.index)
        self._log.warning(
            "%s audio stopped (nothing for %.0f s while video arrives); recording video alone "
            "until the camera reconnects",
            stream.codec,
            cmd.silent_s,
        )

    # ---- the camera's streams -------------------------------------------------------------

    def streams_known(self, number: int | None, pipeline: Any) -> None:
        """The camera's streams are set up: a holding session adds the audio and goes on."""
        session = self._sessions.get(number) if number is not None else None
        if session is None or session.pipeline is not pipeline or not session.branch.holding:
            return
        audio = list(pipeline.live_audio())
        session.branch.open_streams([a.tee for a in audio])
        session.audio = audio
        if audio:
            self._log.debug("recording audio: %s", pipeline.audio_codec)

    # ---- what the watchdog and the status see ---------------------------------------------

    def output(self, number: int | None) -> Hashable | None:
        """A mark that changes while the session's file grows; None before it wrote anything.
        (An element query: no file-system call on the loop thread.)"""
        session = self._sessions.get(number) if number is not None else None
        if session is None or not session.branch.gate_passed:
            return None
        return (session.branch.current, session.branch.bytes_written())

    def audio_counts(self, number: int | None) -> tuple[int | None, ...]:
        session = self._sessions.get(number) if number is not None else None
        if session is None:
            return ()
        ended = session.branch.audio_ended
        return tuple(
            None if i < len(ended) and ended[i] else stream.buffers()
            for i, stream in enumerate(session.audio)
        )

    def current_file(self, number: int | None) -> Path | None:
        session = self._sessions.get(number) if number is not None else None
        return session.branch.current if session is not None else None
