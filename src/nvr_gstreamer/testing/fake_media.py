"""Fakes for the seams of :mod:`nvr_gstreamer.camera.media`: a scheduler on a fake clock and
media that replay what GStreamer reports, so that a whole camera — supervisor, recording
controller, runtime — runs in-process in a unit test, in milliseconds, without ``gi``.

The faults are those rtspsrc and the recorder's elements post (GStreamer 1.22, as measured in
GSTREAMER_NOTES.md), as :func:`~nvr_gstreamer.gst.faults.fault_from_error_message` turns them
into :class:`Fault` values: the same domain names, codes and texts the classification table
sees in the product.

Longer than ~300 lines: one fake per seam of camera/media.py, kept side by side so that the
fakes change together with the protocols.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nvr_gstreamer.camera.errors import Fault, Origin
from nvr_gstreamer.camera.media import (
    BranchDone,
    FragmentClosed,
    FragmentOpened,
    FrameCallback,
    LiveFormat,
    PipelineHooks,
    PipelineSpec,
)
from nvr_gstreamer.core.clock import FakeClock
from nvr_gstreamer.storage.timeline import GapReason
from nvr_gstreamer.storage.volume import StorageState, VolumeCheck

_RESOURCE = "gst-resource-error-quark"
_STREAM = "gst-stream-error-quark"

# ---- faults as GStreamer posts them ---------------------------------------------------------

UNAUTHORIZED = Fault(
    Origin.SOURCE, "source", _RESOURCE, 15, "Unauthorized",
    "gstrtspsrc.c(6745): gst_rtspsrc_send (): /GstPipeline:cam/GstRTSPSrc:source:\n"
    "Unauthorized (401)",
)  # fmt: skip
SERVER_GONE = Fault(
    Origin.SOURCE, "source", _RESOURCE, 9, "Could not read from resource.",
    "gstrtspsrc.c(5761): gst_rtsp_src_receive_response (): "
    "/GstPipeline:cam/GstRTSPSrc:source:\nCould not receive message. (System error)",
)  # fmt: skip
TRANSPORT_REFUSED = Fault(
    Origin.SOURCE, "source", _STREAM, 6,  # CODEC_NOT_FOUND
    "No supported stream was found. You might need to allow more transport protocols or may "
    "otherwise be missing the right GStreamer RTSP extension plugin.",
)  # fmt: skip


def disk_full(branch: str) -> Fault:
    """filesink in a recorder branch on a full volume."""
    return Fault(
        Origin.RECORDER, "sink", _RESOURCE, 14, "No space left on the resource.", "", branch
    )


# ---- the scheduler --------------------------------------------------------------------------


class _Timer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeScheduler:
    """The loop on a :class:`FakeClock`: nothing runs until :meth:`run` lets time pass."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._timers: list[tuple[float, int, _Timer, Callable[[], Any], float | None]] = []
        self._seq = itertools.count()

    def in_loop(self) -> bool:
        return True

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        self._calls.append((fn, args))

    def timeout(self, delay_s: float, fn: Callable[[], Any]) -> _Timer:
        return self._add(delay_s, fn, None)

    def every(self, interval_s: float, fn: Callable[[], Any]) -> _Timer:
        return self._add(interval_s, fn, interval_s)

    def _add(self, delay_s: float, fn: Callable[[], Any], repeat: float | None) -> _Timer:
        timer = _Timer()
        due = self.clock.monotonic() + delay_s
        heapq.heappush(self._timers, (due, next(self._seq), timer, fn, repeat))
        return timer

    def run(self, seconds: float = 0.0) -> None:
        """Run what is queued, then let ``seconds`` pass, firing timers as they fall due."""
        end = self.clock.monotonic() + seconds
        self._drain()
        while self._timers and self._timers[0][0] <= end:
            due, _seq, timer, fn, repeat = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.clock.advance(max(0.0, due - self.clock.monotonic()))
            if repeat is not None:
                heapq.heappush(self._timers, (due + repeat, next(self._seq), timer, fn, repeat))
            fn()
            self._drain()
        self.clock.advance(max(0.0, end - self.clock.monotonic()))

    def _drain(self) -> None:
        while self._calls:
            fn, args = self._calls.popleft()
            fn(*args)


# ---- media ----------------------------------------------------------------------------------


class FakeAudio:
    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.tee = f"{codec}-tee"
        self.dead = False
        self.count = 0

    def buffers(self) -> int:
        return self.count


class FakePipeline:
    """Reports what a test tells it to, as a real pipeline would (through the scheduler)."""

    def __init__(self, scheduler: FakeScheduler, spec: PipelineSpec, generation: int,
                 hooks: PipelineHooks) -> None:  # fmt: skip
        self._scheduler = scheduler
        self.spec = spec
        self.generation = generation
        self.hooks = hooks
        self.codec: str | None = None
        self.receive_path = "stamp" if spec.transport == "tcp" else "jitterbuffer"
        self.streams_known = False
        self.skipped: list[str] = []
        self.audio: list[FakeAudio] = []
        self.started = self.released = False
        self.buffers = self.bytes = 0
        self.branches: list[Any] = []
        self._deferred: dict[int, BranchDone | None] = {}
        self.audio_opened = False

    @property
    def audio_codec(self) -> str | None:
        return "+".join(a.codec for a in self.audio) or None

    def start(self) -> None:
        self.started = True

    def release(self) -> None:
        self.released = True
        for branch in list(self.branches):
            done = self._deferred.pop(id(branch), None)
            self.branches.remove(branch)
            if done is not None:
                self._scheduler.call(done, True)

    def stats(self) -> tuple[int, int]:
        return self.buffers, self.bytes

    def rtp_stats(self) -> tuple[int, int]:
        return 0, 0

    def live_audio(self) -> list[FakeAudio]:
        return [a for a in self.audio if not a.dead] if self.streams_known else []

    def attach(self, branch: Any, audio: Sequence[Any] = ()) -> None:
        assert not self.released
        self.branches.append(branch)
        if isinstance(branch, FakeRecorder):
            branch.attached_audio = list(audio)

    def detach(
        self, branch: Any, done: BranchDone | None = None, with_release: bool = False
    ) -> None:
        if with_release:
            self._deferred[id(branch)] = done
            return
        self.branches.remove(branch)
        if done is not None:
            self._scheduler.call(done, True)

    def open_audio(self) -> None:
        self.audio_opened = True

    def mark_streams_known(self) -> None:
        if not self.streams_known:
            self.streams_known = True
            self.hooks.on_streams_known(self.generation)

    # ---- what a test makes it report ------------------------------------------------------

    def first_frame(self, codec: str = "h264", audio: Sequence[str] = ()) -> None:
        self.codec = codec
        self.audio = [FakeAudio(c) for c in audio]
        self.buffers += 1
        self._scheduler.call(self.hooks.on_first_frame, self.generation)

    def no_more_pads(self) -> None:
        self._scheduler.call(self.mark_streams_known)

    def frames(self, n: int, size: int = 4000) -> None:
        self.buffers += n
        self.bytes += n * size

    def fault(self, fault: Fault, branch: Any = None) -> None:
        self._scheduler.call(self.hooks.on_fault, self.generation, fault, branch)


class FakeRecorder:
    _count = 0

    def __init__(self, location_for: Callable[[int], Path | None],
                 on_opened: Callable[[Any, FragmentOpened], None],
                 on_closed: Callable[[Any, FragmentClosed], None],
                 armed: bool, pre_record_s: float, hold: bool) -> None:  # fmt: skip
        FakeRecorder._count += 1
        self.name = f"recorder-{FakeRecorder._count}"
        self._location_for = location_for
        self._on_opened = on_opened
        self._on_closed = on_closed
        self.armed = armed
        self.pre_record_s = pre_record_s
        self.finish_timeout_s = 3.0
        self.holding = hold
        self.current: Path | None = None
        self.audio_ended: list[bool] = []
        self.attached_audio: list[Any] = []
        self.written = 0
        self.gate_passed = False

    def start(self) -> None:
        self.armed = False

    def open_streams(self, audio_tees: Sequence[Any]) -> None:
        self.audio_ended = [False] * len(audio_tees)
        self.holding = False

    def end_audio(self, index: int) -> None:
        self.audio_ended[index] = True

    def bytes_written(self) -> int:
        return self.written

    # ---- what a test makes it do ----------------------------------------------------------

    def write(self, nbytes: int, running_time_s: float = 0.0) -> Path | None:
        """Frames reach the file: the first opens one (as splitmuxsink does)."""
        self.gate_passed = True
        if self.current is None:
            path = self._location_for(0)
            if path is None:
                return None
            self.current = path
            self._on_opened(self, FragmentOpened(path, running_time_s, 0.0))
        self.written += nbytes
        return self.current

    def close_file(self, running_time_s: float) -> None:
        path, self.current = self.current, None
        if path is not None:
            self._on_closed(self, FragmentClosed(path, running_time_s))


class FakeLiveStream:
    def __init__(
        self, on_failed: Callable[[str], None], deliver: FrameCallback | None = None
    ) -> None:
        self.on_failed = on_failed
        self.deliver = deliver  # a test hands frames to the view through it
        self.started = self.released = False

    def start(self) -> None:
        self.started = True

    def release(self) -> None:
        self.released = True


class FakeWebSink:
    """Where the browser live view's viewers are served: the descriptors it was handed and
    not yet given back (``clients``), and every one it ever got (``given``)."""

    def __init__(self) -> None:
        self.clients: list[int] = []
        self.given: list[int] = []

    def add_client(self, fd: int) -> None:
        assert fd not in self.clients, f"fd {fd} handed twice"
        self.clients.append(fd)
        self.given.append(fd)

    def remove_client(self, fd: int) -> None:
        self.clients.remove(fd)


class FakeWebStream(FakeLiveStream, FakeWebSink):
    """A browser sub-stream: a sink of its own."""

    def __init__(self, spec: PipelineSpec, on_failed: Callable[[str], None]) -> None:
        FakeLiveStream.__init__(self, on_failed)
        FakeWebSink.__init__(self)
        self.spec = spec
        self.frames = 0  # a test counts the frames that reach the sink


class FakeWebRtcBranch:
    """Keeps what the browser said; ``send`` is what the real branch would call."""

    def __init__(self, send: Callable[[Any], None]) -> None:
        self.send = send
        self.answers: list[str] = []
        self.candidates: list[Any] = []

    def set_answer(self, sdp: str) -> bool:
        self.answers.append(sdp)
        return sdp.startswith("v=0")

    def add_ice(self, candidate: Any) -> None:
        self.candidates.append(candidate)


class FakeBranchHost:
    """A camera pipeline as a view sees it: branches attached and detached, kept in order."""

    def __init__(self) -> None:
        self.attached: list[Any] = []
        self.detached: list[Any] = []

    def attach(self, branch: Any) -> None:
        self.attached.append(branch)

    def detach(self, branch: Any) -> None:
        self.detached.append(branch)


class FakeMedia:
    """Keeps everything it made, newest last, for the test to drive."""

    def __init__(self, scheduler: FakeScheduler) -> None:
        self._scheduler = scheduler
        self.pipelines: list[FakePipeline] = []
        self.recorders: list[FakeRecorder] = []
        self.live_branches: list[Any] = []
        self.live_streams: list[FakeLiveStream] = []
        self.web_branches: list[Any] = []
        self.web_streams: list[FakeWebStream] = []
        self.webrtc_branches: list[FakeWebRtcBranch] = []

    def pipeline(self, spec: PipelineSpec, generation: int, hooks: PipelineHooks) -> FakePipeline:
        made = FakePipeline(self._scheduler, spec, generation, hooks)
        self.pipelines.append(made)
        return made

    def recorder(
        self,
        _segment_s: float,
        location_for: Callable[[int], Path | None],
        on_opened: Callable[[Any, FragmentOpened], None],
        on_closed: Callable[[Any, FragmentClosed], None],
        *,
        armed: bool,
        pre_record_s: float,
        hold: bool,
    ) -> FakeRecorder:
        made = FakeRecorder(location_for, on_opened, on_closed, armed, pre_record_s, hold)
        self.recorders.append(made)
        return made

    def live_branch(self, camera_id: str, _fmt: LiveFormat, deliver: FrameCallback) -> Any:
        made = (camera_id, deliver)
        self.live_branches.append(made)
        return made

    def web_branch(self) -> FakeWebSink:
        made = FakeWebSink()
        self.web_branches.append(made)
        return made

    def webrtc_branch(self, send: Callable[[Any], None]) -> FakeWebRtcBranch:
        made = FakeWebRtcBranch(send)
        self.webrtc_branches.append(made)
        return made

    def web_stream(self, spec: PipelineSpec, on_failed: Callable[[str], None]) -> FakeWebStream:
        made = FakeWebStream(spec, on_failed)
        self.web_streams.append(made)
        return made

    def live_stream(self, _spec: PipelineSpec, _fmt: LiveFormat, deliver: FrameCallback,
                    on_failed: Callable[[str], None]) -> FakeLiveStream:  # fmt: skip
        made = FakeLiveStream(on_failed, deliver)
        self.live_streams.append(made)
        return made


# ---- storage --------------------------------------------------------------------------------


class FakeStorage:
    """Remembers what the camera told it; answers checks when the test says so."""

    def __init__(self, root: Path = Path("/rec"), pre_record_s: float = 0.0) -> None:
        self.root = root
        self.segment_seconds = 60.0
        self.pre_record_seconds = pre_record_s
        self.state = VolumeCheck(StorageState.OK, "ok")
        self.gaps: list[tuple[GapReason | None, float | None]] = []
        self.opened: list[Path] = []
        self.closed: list[tuple[Path, float]] = []
        self.checks: list[tuple[bool, Callable[[VolumeCheck], None] | None]] = []
        self._listeners: list[Callable[[VolumeCheck], None]] = []
        self._n = 0
        self._events = 0
        self.events: list[tuple[str, int, str]] = []  # (start | end, id, camera)

    def subscribe(self, listener: Callable[[VolumeCheck], None]) -> None:
        """Hear every change of the volume's state (as the engine does)."""
        self._listeners.append(listener)

    def new_segment_path(self, camera_id: str) -> Path | None:
        if self.state.state is not StorageState.OK:
            return None
        self._n += 1
        return self.root / camera_id / f"{self._n:04d}.mkv"

    def segment_opened(self, _camera_id: str, path: Path, _start_utc: float) -> None:
        self.opened.append(path)

    def segment_closed(self, _camera_id: str, path: Path, _start: float, duration: float) -> None:
        self.closed.append((path, duration))

    def interruption(
        self, _camera_id: str, reason: GapReason | None, at_utc: float | None = None
    ) -> None:
        self.gaps.append((reason, at_utc))

    def check_now(self, then: Callable[[VolumeCheck], None] | None = None) -> None:
        self.checks.append((False, then))

    def report_disk_full(self, then: Callable[[VolumeCheck], None] | None = None) -> None:
        self.checks.append((True, then))

    def new_event_id(self) -> int:
        self._events += 1
        return self._events

    def event_started(self, event_id: int, camera_id: str, *_args: object) -> None:
        self.events.append(("start", event_id, camera_id))

    def event_ended(self, event_id: int, *_args: object) -> None:
        self.events.append(("end", event_id, ""))

    def answer(self, state: StorageState, reason: str = "") -> None:
        """The volume was looked at: every pending check hears ``state``, and every
        subscriber when it changed."""
        changed = state is not self.state.state
        self.state = VolumeCheck(state, reason or state.value)
        checks, self.checks = self.checks, []
        for _full, then in checks:
            if then is not None:
                then(self.state)
        if changed:
            for listener in self._listeners:
                listener(self.state)
