"""The camera supervisor: a pure state machine that decides; the runtime does.

Events in (what happened), commands out (what to do). No ``gi``, no threads, no sleeps; time
comes from the injected clock. A test is a list of events and the commands expected.

Single flight: a camera has at most one pipeline (identified by its *generation*) and at most
one pending wake-up. A burst of errors from one outage tears down once and schedules one
retry; events from an older generation are ignored, as are faults while already waiting.

While waiting out a backoff after a network fault, a cheap reachability probe runs every
``probe_interval_s`` (every ``probe_slow_interval_s`` once the outage is older than
``probe_slow_after_s``); when the camera goes from unreachable to reachable the retry happens at
once, so a camera that comes back is recording again about a keyframe later however long it was
gone. The loss of a streaming camera counts as "unreachable" for its first probe. After a probe
found the port closed (nothing accepts connections), the next probes only connect: a port that
accepts again is the camera's RTSP server back, and the pipeline starts at once instead of after
one more DESCRIBE round trip (which a camera just back may answer only once its encoder runs).
A camera that answers probes but fails to stream (still booting, a transient 503) gets three
quick retries per outage, 1, 2 and 4 s apart, then the backoff.
Unauthorized and not-found are permanent until someone fixes something: they show as such,
are retried at the backoff cap, and are not probed.

Longer than ~300 lines: its event and command types are the contract; the state machine is one
class whose transitions are best read together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from nvr_gstreamer.camera.backoff import Backoff
from nvr_gstreamer.camera.errors import ErrorKind
from nvr_gstreamer.core.clock import Clock


class CameraState(Enum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    FAILED = "failed"  # max_retries reached: needs a restart
    DISABLED = "disabled"


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartRequested:
    pass


@dataclass(frozen=True, slots=True)
class StopRequested:
    pass


@dataclass(frozen=True, slots=True)
class PipelineStreaming:
    """The first video buffer of a pipeline generation arrived."""

    generation: int


@dataclass(frozen=True, slots=True)
class PipelineFailed:
    generation: int
    kind: ErrorKind
    message: str
    stalled: bool = False
    # The next attempt uses the other RTP transport (transport: auto, this one was refused):
    # worth trying at once, not after a backoff — once per outage, so two refusals never spin.
    other_transport: bool = False


class Reach(Enum):
    """What a reachability probe found."""

    CLOSED = "closed"  # no TCP connection (refused, unreachable, timed out)
    OPEN = "open"  # connected; no usable DESCRIBE answer (none asked, 5xx, silence, garbage)
    ANSWERS = "answers"  # answered DESCRIBE with a status below 500


@dataclass(frozen=True, slots=True)
class ProbeFinished:
    probe_id: int
    reach: Reach


@dataclass(frozen=True, slots=True)
class Woke:
    """The wake-up the supervisor last asked for is due."""


Event = StartRequested | StopRequested | PipelineStreaming | PipelineFailed | ProbeFinished | Woke


# ---- commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartPipeline:
    generation: int


@dataclass(frozen=True, slots=True)
class StopPipeline:
    generation: int


@dataclass(frozen=True, slots=True)
class ScheduleWake:
    """Replace any pending wake-up with one after ``delay_s``; None cancels it."""

    delay_s: float | None


@dataclass(frozen=True, slots=True)
class RunProbe:
    probe_id: int
    connect_only: bool = False  # only check that the port accepts a connection (no DESCRIBE)


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: CameraState
    new: CameraState
    reason: str


Command = StartPipeline | StopPipeline | ScheduleWake | RunProbe | StateChanged


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    backoff: Backoff = field(default_factory=Backoff)
    probe_interval_s: float = 0.25  # while a camera is away, for the first probe_slow_after_s
    probe_slow_interval_s: float = 1.0  # afterwards
    probe_slow_after_s: float = 600.0
    connect_timeout_s: float = 15.0  # no first frame this long after starting counts as a fault


@dataclass(frozen=True, slots=True)
class SupervisorCounters:
    disconnects: int = 0  # outages of a streaming camera, however many errors each produced
    reconnect_attempts: int = 0
    stalls: int = 0
    errors: tuple[tuple[ErrorKind, int], ...] = ()

    def error_count(self, kind: ErrorKind) -> int:
        return dict(self.errors).get(kind, 0)


@dataclass(frozen=True, slots=True)
class SupervisorView:
    """What the supervisor knows, for the status snapshot."""

    state: CameraState
    since: datetime
    reason: str
    last_error_kind: ErrorKind | None
    last_error_message: str | None
    reconnect_attempt: int
    next_retry_in_s: float | None
    counters: SupervisorCounters
    stalled: bool = False  # the camera is down because its video stopped on an open connection


QUICK_RETRIES = 3  # per outage, for a camera that answers probes but fails to stream
OTHER_TRANSPORT_DELAY_S = 0.2  # a refused transport: the other one is tried (almost) at once
_WAITING_STATES = (CameraState.RECONNECTING, CameraState.UNAUTHORIZED, CameraState.NOT_FOUND)


class CameraSupervisor:
    def __init__(
        self,
        clock: Clock,
        settings: SupervisorSettings,
        *,
        enabled: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._rng = rng or random.Random()
        self._state = CameraState.STOPPED if enabled else CameraState.DISABLED
        self._since = clock.wall()
        self._stalled = False  # the last failure was a stall
        self._reason = "not started" if enabled else "disabled in the config"
        self._generation = 0
        self._pipeline_active = False
        self._attempt_deadline: float | None = None  # first frame due by then
        self._streaming_since: float | None = None
        self._failures = 0  # consecutive failures in this outage
        self._attempts = 0  # reconnect attempts in this outage
        self._retry_at: float | None = None
        self._probing = False
        self._probe_id = 0
        self._probe_in_flight = False
        self._next_probe_at: float | None = None
        self._seen_unreachable = False
        # The last probe of this outage found nothing accepting connections (kept across a
        # failed attempt: a backoff retry refused just before the camera returns must not cost
        # a DESCRIBE round trip).
        self._port_closed = False
        self._outage_since: float | None = None  # since when the camera has not streamed
        self._port_retry_at: float | None = None  # last retry because the port opened
        self._port_retry_gap_s = 1.0
        self._quick_retries_left = 0
        self._switched_transport = False  # this outage already retried at once on the other one
        self._quick_gap_s = 1.0
        self._last_failure_at = 0.0
        self._last_kind: ErrorKind | None = None
        self._last_message: str | None = None
        self._counters = SupervisorCounters()
        self._errors: dict[ErrorKind, int] = {}

    # ---- queries ----------------------------------------------------------------------------

    @property
    def state(self) -> CameraState:
        return self._state

    @property
    def generation(self) -> int:
        return self._generation

    def view(self) -> SupervisorView:
        now = self._clock.monotonic()
        next_in = None
        if self._state in _WAITING_STATES and self._retry_at is not None:
            next_in = max(0.0, self._retry_at - now)
        return SupervisorView(
            state=self._state,
            since=self._since,
            reason=self._reason,
            last_error_kind=self._last_kind,
            last_error_message=self._last_message,
            reconnect_attempt=self._attempts,
            next_retry_in_s=next_in,
            counters=replace(self._counters, errors=tuple(self._errors.items())),
            stalled=self._stalled and self._state is not CameraState.STREAMING,
        )

    # ---- events -----------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Command]:
        match event:
            case StartRequested():
                return self._on_start()
            case StopRequested():
                return self._on_stop()
            case PipelineStreaming(generation=gen):
                return self._on_streaming(gen)
            case PipelineFailed():
                return self._on_failed(event)
            case ProbeFinished(probe_id=pid, reach=reach):
                return self._on_probe(pid, reach)
            case Woke():
                return self._on_wake()
        raise TypeError(f"not a supervisor event: {event!r}")  # pragma: no cover

    def _current(self, generation: int) -> bool:
        return self._pipeline_active and generation == self._generation

    def _on_start(self) -> list[Command]:
        if self._state is not CameraState.STOPPED and self._state is not CameraState.FAILED:
            return []  # already running, or disabled
        self._failures = self._attempts = 0
        self._outage_since = self._clock.monotonic()
        # Not streaming yet is an outage too: a camera that refuses for a moment at start (503
        # while it still holds the session of the NVR's previous run) gets the quick retries.
        self._fresh_quick_retries()
        out = self._move(CameraState.CONNECTING, "started")
        return out + self._start_pipeline()

    def _on_stop(self) -> list[Command]:
        if self._state in (CameraState.STOPPED, CameraState.DISABLED):
            return []
        out = self._teardown()
        self._retry_at = None
        self._stop_probing()
        out.append(ScheduleWake(None))
        return out + self._move(CameraState.STOPPED, "stopped by request")

    def _on_streaming(self, generation: int) -> list[Command]:
        if not self._current(generation) or self._state is CameraState.STREAMING:
            return []
        self._attempt_deadline = None
        self._streaming_since = self._clock.monotonic()
        self._outage_since = None
        self._port_closed = False
        self._attempts = 0
        self._retry_at = None
        self._switched_transport = False
        self._stop_probing()
        reason = "first frame" if self._state is CameraState.CONNECTING else "reconnected"
        return [ScheduleWake(None), *self._move(CameraState.STREAMING, reason)]

    def _on_failed(self, event: PipelineFailed) -> list[Command]:
        self._errors[event.kind] = self._errors.get(event.kind, 0) + 1
        if not self._current(event.generation):
            return []  # a later message of an outage already handled, or an old pipeline
        self._last_kind = event.kind
        self._last_message = event.message
        self._stalled = event.stalled
        if event.stalled:
            self._counters = replace(self._counters, stalls=self._counters.stalls + 1)
        at_once = event.other_transport and not self._switched_transport
        self._switched_transport = self._switched_transport or event.other_transport
        return self._fail(event.kind, event.message, at_once)

    def _fail(self, kind: ErrorKind, message: str, at_once: bool = False) -> list[Command]:
        now = self._clock.monotonic()
        was_streaming = self._state is CameraState.STREAMING
        self._last_failure_at = now
        if was_streaming:  # a new outage: a fresh budget of quick retries
            self._fresh_quick_retries()
        if was_streaming or self._outage_since is None:
            self._outage_since = now
        if was_streaming:
            self._counters = replace(self._counters, disconnects=self._counters.disconnects + 1)
            stable = self._streaming_since is not None and (
                now - self._streaming_since >= self._settings.backoff.reset_after_s
            )
            if stable:
                self._failures = 0
        self._streaming_since = None
        out = self._teardown()
        self._failures += 1
        backoff = self._settings.backoff
        if backoff.gives_up(self._attempts):
            self._retry_at = None
            self._stop_probing()
            out.append(ScheduleWake(None))
            return out + self._move(
                CameraState.FAILED, f"gave up after {self._attempts} attempts: {message}"
            )
        if kind is ErrorKind.UNAUTHORIZED or kind is ErrorKind.NOT_FOUND:
            delay = backoff.cap_delay(self._rng)
            new_state = (
                CameraState.UNAUTHORIZED
                if kind is ErrorKind.UNAUTHORIZED
                else CameraState.NOT_FOUND
            )
            self._stop_probing()
        else:
            delay = OTHER_TRANSPORT_DELAY_S if at_once else backoff.delay(self._failures, self._rng)
            new_state = CameraState.RECONNECTING
            # The loss of a streaming camera is itself evidence that it was unreachable: its
            # first good probe retries at once. Later failures of the same outage need an
            # observed unreachable probe first (or one of the few spaced quick retries), so a
            # camera that answers but cannot stream never gets a storm.
            self._start_probing(now, assume_unreachable=was_streaming)
        self._retry_at = now + delay
        out += self._move(new_state, f"{message}; retry in {delay:.1f} s")
        out.append(self._next_wake(now))
        return out

    def _on_probe(self, probe_id: int, reach: Reach) -> list[Command]:
        if not self._probing or probe_id != self._probe_id:
            return []
        self._probe_in_flight = False
        now = self._clock.monotonic()
        port_was_closed, self._port_closed = self._port_closed, reach is Reach.CLOSED
        if (
            port_was_closed
            and reach is not Reach.CLOSED
            and not self._pipeline_active
            and (self._port_retry_at is None or now - self._port_retry_at >= self._port_retry_gap_s)
        ):
            # Closed before, accepting now: the camera's RTSP server is back. Connect at once;
            # the pipeline's own DESCRIBE waits for the camera to be ready. A port that keeps
            # flapping gets these retries ever further apart (1, 2, 4 s... up to the backoff cap).
            if self._port_retry_at is not None:
                self._port_retry_gap_s = min(
                    2 * self._port_retry_gap_s, self._settings.backoff.cap_s
                )
            self._port_retry_at = now
            self._stop_probing()
            return self._retry("camera port open again")
        if reach is not Reach.ANSWERS:
            self._seen_unreachable = True
            self._next_probe_at = now + self._probe_interval(now)
            return [self._next_wake(now)]
        if self._seen_unreachable and not self._pipeline_active:
            # Unreachable before, reachable now: the camera is back. Retry at once.
            self._stop_probing()
            return self._retry("camera reachable again")
        if (
            self._quick_retries_left > 0
            and not self._pipeline_active
            and now - self._last_failure_at >= self._quick_gap_s
        ):
            # Answers but failed to stream (a camera still booting, a transient 503): a few
            # quick retries, each after a doubled pause, before the backoff takes over.
            self._quick_retries_left -= 1
            self._quick_gap_s *= 2
            self._stop_probing()
            return self._retry("camera answers; quick retry")
        # Reachable all along (the fault is elsewhere): keep the backoff, keep watching.
        self._next_probe_at = now + self._probe_interval(now)
        return [self._next_wake(now)]

    def _on_wake(self) -> list[Command]:
        now = self._clock.monotonic()
        if self._pipeline_active and self._attempt_deadline is not None:
            if now >= self._attempt_deadline:
                msg = f"no video within {self._settings.connect_timeout_s:g} s of connecting"
                self._last_kind, self._last_message = ErrorKind.NETWORK, msg
                self._errors[ErrorKind.NETWORK] = self._errors.get(ErrorKind.NETWORK, 0) + 1
                return self._fail(ErrorKind.NETWORK, msg)
            return [self._next_wake(now)]
        if self._state not in _WAITING_STATES or self._pipeline_active:
            return []
        if self._retry_at is not None and now >= self._retry_at:
            return self._retry("backoff elapsed")
        out: list[Command] = []
        if (
            self._probing
            and not self._probe_in_flight
            and self._next_probe_at is not None
            and now >= self._next_probe_at
        ):
            self._probe_id += 1
            self._probe_in_flight = True
            self._next_probe_at = None
            out.append(RunProbe(self._probe_id, connect_only=self._port_closed))
        out.append(self._next_wake(now))
        return out

    # ---- helpers ----------------------------------------------------------------------------

    def _retry(self, why: str) -> list[Command]:
        self._stop_probing()
        self._attempts += 1
        self._retry_at = None
        self._counters = replace(
            self._counters, reconnect_attempts=self._counters.reconnect_attempts + 1
        )
        self._reason = f"attempt {self._attempts} ({why})"
        return self._start_pipeline()

    def _start_pipeline(self) -> list[Command]:
        self._generation += 1
        self._pipeline_active = True
        now = self._clock.monotonic()
        self._attempt_deadline = now + self._settings.connect_timeout_s
        return [StartPipeline(self._generation), self._next_wake(now)]

    def _teardown(self) -> list[Command]:
        if not self._pipeline_active:
            return []
        self._pipeline_active = False
        self._attempt_deadline = None
        return [StopPipeline(self._generation)]

    def _start_probing(self, now: float, assume_unreachable: bool) -> None:
        if not self._probing:
            self._probing = True
            self._seen_unreachable = assume_unreachable
            self._probe_in_flight = False
            self._probe_id += 1  # results of earlier probes are stale
        if not self._probe_in_flight:
            self._next_probe_at = now + self._probe_interval(now)

    def _fresh_quick_retries(self) -> None:
        self._quick_retries_left = QUICK_RETRIES
        self._quick_gap_s = max(1.0, self._settings.probe_interval_s)
        self._port_retry_at, self._port_retry_gap_s = None, 1.0

    def _stop_probing(self) -> None:
        self._probing = False
        self._probe_in_flight = False
        self._next_probe_at = None

    def _probe_interval(self, now: float) -> float:
        """Fast while an outage is young, slower once it is old (a camera removed for good)."""
        settings = self._settings
        since = self._outage_since
        if since is not None and now - since >= settings.probe_slow_after_s:
            return settings.probe_slow_interval_s
        return settings.probe_interval_s

    def _next_wake(self, now: float) -> ScheduleWake:
        deadlines = [
            t
            for t in (self._attempt_deadline, self._retry_at, self._next_probe_at)
            if t is not None
        ]
        if not deadlines:
            return ScheduleWake(None)
        return ScheduleWake(max(0.0, min(deadlines) - now))

    def _move(self, new: CameraState, reason: str) -> list[Command]:
        old = self._state
        self._reason = reason
        if new is old:
            return []
        self._state = new
        self._since = self._clock.wall()
        return [StateChanged(old, new, reason)]
