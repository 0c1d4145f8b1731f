"""CameraSupervisor scripts with a fake clock: hours of reconnects in milliseconds."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from nvr_gstreamer.camera.backoff import Backoff
from nvr_gstreamer.camera.errors import ErrorKind
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
    SupervisorCounters,
    SupervisorSettings,
    SupervisorView,
    Woke,
)
from nvr_gstreamer.core.clock import FakeClock


class Harness:
    """Plays the runtime: remembers the one pending wake-up and fires it as time passes."""

    def __init__(self, settings: SupervisorSettings | None = None, seed: int = 1) -> None:
        self.clock = FakeClock()
        self.sup = CameraSupervisor(
            self.clock, settings or SupervisorSettings(), rng=random.Random(seed)
        )
        self.wake_at: float | None = None
        self.log: list[tuple[float, Command]] = []
        self.probes: list[int] = []
        self.probe_kinds: list[bool] = []  # connect_only of each probe

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def send(self, event: Event) -> list[Command]:
        out = self.sup.handle(event)
        for cmd in out:
            self.log.append((self.now, cmd))
            if isinstance(cmd, ScheduleWake):
                self.wake_at = None if cmd.delay_s is None else self.now + cmd.delay_s
            if isinstance(cmd, RunProbe):
                self.probes.append(cmd.probe_id)
                self.probe_kinds.append(cmd.connect_only)
        return out

    def advance(self, seconds: float) -> None:
        """Let time pass, delivering every wake-up that falls due on the way."""
        end = self.now + seconds
        while self.wake_at is not None and self.wake_at <= end:
            self.clock.advance(max(0.0, self.wake_at - self.now))
            self.wake_at = None
            self.send(Woke())
        self.clock.advance(end - self.now)

    def advance_until_retry(self, limit_s: float = 3600) -> float:
        """Advance to the next pipeline start; return the time waited."""
        n, begin = len(self.starts()), self.now
        while len(self.starts()) == n:
            assert self.wake_at is not None and self.wake_at - begin <= limit_s, "no retry"
            self.advance(self.wake_at - self.now)
        return self.now - begin

    def starts(self) -> list[tuple[float, int]]:
        return [(t, c.generation) for t, c in self.log if isinstance(c, StartPipeline)]

    def stops(self) -> list[int]:
        return [c.generation for _, c in self.log if isinstance(c, StopPipeline)]

    def fail(self, kind: ErrorKind = ErrorKind.NETWORK, msg: str = "lost") -> list[Command]:
        return self.send(PipelineFailed(self.sup.generation, kind, msg))

    def stream(self) -> list[Command]:
        return self.send(PipelineStreaming(self.sup.generation))


def streaming_harness(settings: SupervisorSettings | None = None) -> Harness:
    h = Harness(settings)
    h.send(StartRequested())
    h.stream()
    assert h.sup.state is CameraState.STREAMING
    return h


def test_start_connects_then_streams_with_transitions() -> None:
    h = Harness()
    h.send(StartRequested())
    assert h.sup.state is CameraState.CONNECTING
    assert h.starts() == [(h.now, 1)]
    out = h.stream()
    assert StateChanged(CameraState.CONNECTING, CameraState.STREAMING, "first frame") in out


def test_burst_of_three_errors_gives_one_teardown_and_one_reconnect() -> None:
    h = streaming_harness()
    gen = h.sup.generation
    h.send(PipelineFailed(gen, ErrorKind.NETWORK, "Could not read from resource."))
    h.send(PipelineFailed(gen, ErrorKind.NETWORK, "Internal data stream error."))
    h.send(PipelineFailed(gen, ErrorKind.NETWORK, "Could not write to resource."))
    assert h.stops() == [gen]
    assert h.sup.state is CameraState.RECONNECTING
    h.advance(6)  # past one 5 s backoff (+10 % jitter)
    assert [g for _, g in h.starts()] == [1, 2]
    view = h.sup.view()
    assert view.counters.disconnects == 1
    assert view.counters.reconnect_attempts == 1
    assert view.counters.error_count(ErrorKind.NETWORK) == 3


def test_fault_from_old_generation_while_reconnecting_is_ignored() -> None:
    h = streaming_harness()
    old = h.sup.generation
    h.fail()
    h.advance(6)  # attempt 2 in flight
    assert h.sup.generation == old + 1
    assert h.send(PipelineFailed(old, ErrorKind.NETWORK, "late echo")) == []
    assert h.send(PipelineStreaming(old)) == []
    assert h.sup.state is CameraState.RECONNECTING
    assert h.stops() == [old]


def test_backoff_doubles_to_the_cap_within_jitter() -> None:
    h = streaming_harness()
    h.fail()
    starts_before = len(h.starts())
    for _ in range(8):
        h.advance_until_retry()
        h.fail()
    times = [t for t, _ in h.starts()[starts_before - 1 :]]
    # Each gap: the wait before the retry that followed a failure.
    fail_times = [t for t, c in h.log if isinstance(c, StopPipeline)]
    waits = [s - f for f, s in zip(fail_times, times[1:], strict=False)]
    assert len(waits) >= 7
    expected = [5, 10, 20, 40, 60, 60, 60]
    for got, base in zip(waits, expected, strict=False):
        assert base * 0.9 - 1e-9 <= got <= base * 1.1 + 1e-9, (waits, expected)


def test_never_gives_up_by_default() -> None:
    h = streaming_harness()
    for _ in range(500):  # over eight hours of failed attempts
        h.fail()
        h.advance_until_retry()
    assert h.sup.state is CameraState.RECONNECTING
    assert h.sup.view().counters.reconnect_attempts == 500


def test_gives_up_after_max_retries_when_configured() -> None:
    h = streaming_harness(SupervisorSettings(backoff=Backoff(max_retries=3)))
    for _ in range(3):
        h.fail()
        h.advance_until_retry()
    h.fail()
    assert h.sup.state is CameraState.FAILED
    assert "gave up after 3 attempts" in h.sup.view().reason
    h.advance(3600)
    assert len(h.starts()) == 4  # the first start and three retries


def test_backoff_resets_after_stable_streaming() -> None:
    h = streaming_harness()
    for _ in range(4):  # 5, 10, 20, 40: short-lived reconnects keep growing
        h.fail()
        h.advance_until_retry()
        h.stream()
    h.fail()
    assert h.sup.view().next_retry_in_s is not None
    assert h.sup.view().next_retry_in_s >= 60 * 0.9
    h.advance_until_retry()
    h.stream()
    h.advance(31)  # stable longer than reset_after_s
    h.fail()
    assert h.sup.view().next_retry_in_s <= 5 * 1.1


def test_probe_success_cuts_a_long_wait_short() -> None:
    h = streaming_harness()
    for _ in range(5):
        h.fail()
        h.advance_until_retry()
    h.fail()  # now waiting ~60 s
    assert h.sup.view().next_retry_in_s >= 54
    failed_at = h.now
    h.advance(1.0)
    assert h.probes, "a probe runs every probe_interval"
    h.send(ProbeFinished(h.probes[-1], Reach.OPEN))
    h.advance(1.0)
    h.send(ProbeFinished(h.probes[-1], Reach.ANSWERS))
    last_start = h.starts()[-1][0]
    assert last_start - failed_at <= 2.0


def test_reachable_all_along_gets_a_few_quick_retries_never_a_storm() -> None:
    """A camera that answers probes but cannot stream: one retry for the outage, three quick
    ones 1, 2 and 4 s apart, and otherwise only the backoff."""
    h = streaming_harness()
    h.fail()
    for _ in range(60):  # a minute of probes that all say "reachable"
        h.advance(1.0)
        if h.probes and h.sup.view().state is CameraState.RECONNECTING:
            h.send(ProbeFinished(h.probes[-1], Reach.ANSWERS))
        if h.sup.generation != 1 and h.stops()[-1] != h.sup.generation:
            h.fail()  # every attempt fails at once
    times = [t for t, _ in h.starts()][1:]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    print("retries at", [round(t - times[0], 1) for t in times])
    assert len(times) <= 1 + 3 + 4  # first, quick ones, and backoff ones (5, 10, 20, 40)
    assert all(g >= 0.99 for g in gaps), gaps


def test_stale_probe_results_are_ignored() -> None:
    h = streaming_harness()
    h.fail()
    h.advance(1.0)
    old_probe = h.probes[-1]
    h.send(ProbeFinished(old_probe, Reach.OPEN))
    h.advance(4.5)  # backoff elapses; attempt in flight
    n = len(h.starts())
    assert h.send(ProbeFinished(old_probe, Reach.ANSWERS)) == []
    assert len(h.starts()) == n


def test_port_open_again_after_closed_starts_at_once_without_describe() -> None:
    """Killed camera: the first probe is a DESCRIBE and finds the port closed; the next ones only
    connect, and the first that connects starts the pipeline in the same step."""
    h = streaming_harness()
    h.fail()  # backoff ~5 s
    lost_at = h.now
    h.advance(0.25)
    assert h.probe_kinds == [False]
    h.send(ProbeFinished(h.probes[-1], Reach.CLOSED))
    for _ in range(3):
        h.advance(0.25)
        assert h.probe_kinds[-1] is True
        h.send(ProbeFinished(h.probes[-1], Reach.CLOSED))
    h.advance(0.25)
    n = len(h.starts())
    out = h.send(ProbeFinished(h.probes[-1], Reach.OPEN))
    assert StartPipeline(h.sup.generation) in out
    assert len(h.starts()) == n + 1
    assert h.now - lost_at < 1.5  # well before the 5 s backoff


def test_open_port_without_answer_is_not_enough_when_never_seen_closed() -> None:
    """A camera that accepts but answers 503 (or nothing): no retry until it answers."""
    h = streaming_harness()
    h.fail()
    n = len(h.starts())
    for _ in range(8):
        h.advance(0.25)
        assert h.probe_kinds[-1] is False  # always a full DESCRIBE
        h.send(ProbeFinished(h.probes[-1], Reach.OPEN))
    assert len(h.starts()) == n
    h.advance(0.25)
    h.send(ProbeFinished(h.probes[-1], Reach.ANSWERS))
    assert len(h.starts()) == n + 1


def test_backoff_retry_refused_just_before_the_return_keeps_connect_only_probes() -> None:
    h = streaming_harness()
    h.fail()
    h.advance(0.25)
    h.send(ProbeFinished(h.probes[-1], Reach.CLOSED))
    waited = h.advance_until_retry()  # probes keep saying nothing; the backoff retry starts
    assert 4.0 <= waited <= 5.5  # the 5 s backoff (±10 %), less the 0.25 s already waited
    h.fail(msg="Could not open resource for reading and writing.")  # refused
    h.advance(0.25)
    assert h.probe_kinds[-1] is True  # no DESCRIBE round trip first
    n = len(h.starts())
    h.send(ProbeFinished(h.probes[-1], Reach.OPEN))
    assert len(h.starts()) == n + 1


@pytest.mark.parametrize("streamed", [True, False], ids=["lost", "at-start-up"])
def test_flapping_port_gets_retries_ever_further_apart(streamed: bool) -> None:
    """Lost while streaming, or failing from the start: the same 1, 2, 4, 8, 16 s apart."""
    h = Harness()
    h.send(StartRequested())
    if streamed:
        h.stream()
    h.fail()
    h.advance(0.25)
    h.send(ProbeFinished(h.probes[-1], Reach.CLOSED))
    port_retries: list[float] = []
    for _ in range(200):  # 50 s of a port flapping closed/open with every attempt refused
        h.advance(0.25)
        if h.sup.view().state is not CameraState.RECONNECTING or h.wake_at is None:
            continue
        if h.probes and h.sup.generation == h.stops()[-1]:  # no attempt in flight
            reach = Reach.CLOSED if h.probe_kinds[-1] is False else Reach.OPEN
            before = len(h.starts())
            h.send(ProbeFinished(h.probes[-1], reach))
            if len(h.starts()) > before:
                port_retries.append(h.now)
                h.fail()
    gaps = [b - a for a, b in itertools.pairwise(port_retries)]
    assert gaps == [1, 2, 4, 8, 16], port_retries


def test_probe_cadence_is_fast_while_the_outage_is_young_then_slower() -> None:
    settings = SupervisorSettings(
        probe_interval_s=0.25, probe_slow_interval_s=1.0, probe_slow_after_s=600.0
    )
    h = streaming_harness(settings)
    h.fail()
    lost_at = h.now
    sent: list[float] = []
    for _ in range(int(700 / 0.05)):
        h.advance(0.05)
        if len(h.probes) > len(sent):
            sent.append(h.now - lost_at)
            h.send(ProbeFinished(h.probes[-1], Reach.OPEN))  # answers nothing, never closed
        if h.sup.generation != h.stops()[-1]:
            h.fail()  # every backoff retry fails at once
    early = [b - a for a, b in itertools.pairwise(t for t in sent if t < 590)]
    late = [b - a for a, b in itertools.pairwise(t for t in sent if t > 610)]
    # (a backoff retry in between restarts the probe round: one gap up to two intervals)
    assert early and statistics.median(early) <= 0.3 and max(early) <= 0.6, early
    assert late and min(late) >= 1.0 - 1e-9, min(late)


def test_unauthorized_is_shown_and_retried_at_the_cap_without_storm() -> None:
    h = Harness()
    h.send(StartRequested())
    for _ in range(10):
        h.fail(ErrorKind.UNAUTHORIZED, "Unauthorized")
        assert h.sup.state is CameraState.UNAUTHORIZED
        h.advance_until_retry()
    times = [t for t, _ in h.starts()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 54 for g in gaps), gaps
    assert not h.probes


def test_not_found_is_its_own_state_and_retried_at_the_cap() -> None:
    h = Harness()
    h.send(StartRequested())
    h.fail(ErrorKind.NOT_FOUND, "Not Found (404)")
    assert h.sup.state is CameraState.NOT_FOUND
    assert 54 <= (h.sup.view().next_retry_in_s or 0) <= 66
    assert 54 <= h.advance_until_retry() <= 66
    assert not h.probes


def test_no_first_frame_within_connect_timeout_is_a_fault() -> None:
    h = Harness(SupervisorSettings(connect_timeout_s=10))
    h.send(StartRequested())
    h.advance(10.5)
    assert h.sup.state is CameraState.RECONNECTING
    assert "no video within 10 s" in (h.sup.view().last_error_message or "")
    assert h.stops() == [1]


def test_stall_counts_once_and_reconnects() -> None:
    h = streaming_harness()
    h.send(PipelineFailed(h.sup.generation, ErrorKind.NETWORK, "no video for 5.0 s", stalled=True))
    view = h.sup.view()
    assert (view.state, view.counters.stalls, view.counters.disconnects) == (
        CameraState.RECONNECTING,
        1,
        1,
    )


def test_stop_is_idempotent_and_cancels_everything() -> None:
    h = streaming_harness()
    h.fail()
    out = h.send(StopRequested())
    assert ScheduleWake(None) in out
    assert h.send(StopRequested()) == []
    h.advance(3600)
    assert h.sup.state is CameraState.STOPPED
    assert len(h.starts()) == 1


def test_disabled_camera_never_starts() -> None:
    sup = CameraSupervisor(FakeClock(), SupervisorSettings(), enabled=False)
    assert sup.handle(StartRequested()) == []
    assert sup.state is CameraState.DISABLED


def test_a_refused_transport_is_retried_on_the_other_at_once_but_only_once_per_outage() -> None:
    h = Harness()
    h.send(StartRequested())
    gen = h.starts()[-1][1]
    h.send(PipelineFailed(gen, ErrorKind.TRANSPORT, "refused", other_transport=True))
    assert h.advance_until_retry() <= 0.25
    # The other transport is refused too: no spin, the backoff (5 s at first) takes over.
    gen = h.starts()[-1][1]
    h.send(PipelineFailed(gen, ErrorKind.TRANSPORT, "refused", other_transport=True))
    assert h.advance_until_retry() >= 1.0
    # Streaming resets it: the next outage may switch at once again.
    gen = h.starts()[-1][1]
    h.send(PipelineStreaming(gen))
    h.send(PipelineFailed(gen, ErrorKind.NETWORK, "lost"))
    h.advance_until_retry()
    gen = h.starts()[-1][1]
    h.send(PipelineFailed(gen, ErrorKind.TRANSPORT, "refused", other_transport=True))
    assert h.advance_until_retry() <= 0.25


def test_a_stall_is_the_cause_on_the_view_until_the_camera_streams_again() -> None:
    h = streaming_harness()
    assert not h.sup.view().stalled
    h.send(PipelineFailed(h.sup.generation, ErrorKind.NETWORK, "no video for 5.0 s", stalled=True))
    assert h.sup.view().stalled
    h.advance_until_retry()
    h.send(PipelineStreaming(h.sup.generation))
    assert not h.sup.view().stalled
    h.send(PipelineFailed(h.sup.generation, ErrorKind.NETWORK, "stream stalled (said the camera)"))
    assert not h.sup.view().stalled  # an error, whatever its words


# ---- what the status shows ----------------------------------------------------------------


def test_a_new_camera_shows_stopped_or_disabled_since_it_was_set_up() -> None:
    clock = FakeClock()
    made_at = clock.wall()
    sup = CameraSupervisor(clock, SupervisorSettings())
    disabled = CameraSupervisor(clock, SupervisorSettings(), enabled=False)
    clock.advance(5)
    assert sup.view() == SupervisorView(
        state=CameraState.STOPPED,
        since=made_at,
        reason="not started",
        last_error_kind=None,
        last_error_message=None,
        reconnect_attempt=0,
        next_retry_in_s=None,
        counters=SupervisorCounters(),
        stalled=False,
    )
    assert sup.view().counters.error_count(ErrorKind.NETWORK) == 0
    assert (disabled.view().state, disabled.view().reason) == (
        CameraState.DISABLED,
        "disabled in the config",
    )


def test_events_before_the_start_change_nothing() -> None:
    sup = CameraSupervisor(FakeClock(), SupervisorSettings())
    for event in (
        PipelineFailed(0, ErrorKind.NETWORK, "late"),
        PipelineStreaming(0),
        ProbeFinished(0, Reach.ANSWERS),
        Woke(),
    ):
        assert sup.handle(event) == [], event
    assert sup.state is CameraState.STOPPED


def test_not_an_event_is_a_type_error() -> None:
    sup = CameraSupervisor(FakeClock(), SupervisorSettings())
    with pytest.raises(TypeError, match="not a supervisor event: 'start'"):
        sup.handle("start")  # type: ignore[arg-type]


def test_every_transition_says_why_and_when() -> None:
    """The reason and the time of each state, as the status API and the desktop show them."""
    h = Harness()
    h.send(StartRequested())
    h.stream()
    h.advance(100)
    lost_at = h.clock.wall()
    h.fail(msg="Could not read from resource.")
    view = h.sup.view()
    assert (view.state, view.since, view.reason) == (
        CameraState.RECONNECTING,
        lost_at,
        "Could not read from resource.; retry in 4.6 s",
    )
    assert (view.last_error_kind, view.last_error_message) == (
        ErrorKind.NETWORK,
        "Could not read from resource.",
    )
    h.advance_until_retry()
    assert (h.sup.view().reason, h.sup.view().reconnect_attempt) == (
        "attempt 1 (backoff elapsed)",
        1,
    )
    assert h.sup.view().since == lost_at  # still reconnecting: the state has not changed
    h.stream()
    h.send(StopRequested())
    reasons = [(c.new, c.reason) for _, c in h.log if isinstance(c, StateChanged)]
    assert reasons == [
        (CameraState.CONNECTING, "started"),
        (CameraState.STREAMING, "first frame"),
        (CameraState.RECONNECTING, "Could not read from resource.; retry in 4.6 s"),
        (CameraState.STREAMING, "reconnected"),
        (CameraState.STOPPED, "stopped by request"),
    ]
    assert h.sup.view().reconnect_attempt == 0  # streaming again ended the outage


def test_the_retry_countdown_reaches_zero() -> None:
    h = streaming_harness()
    h.fail()  # 4.6 s (5 s with this seed's jitter)
    assert h.sup.view().next_retry_in_s == pytest.approx(4.6, abs=0.05)
    h.advance(4.4)
    assert h.sup.view().next_retry_in_s == pytest.approx(0.2, abs=0.05)


def test_no_first_frame_within_connect_timeout_counts_as_a_network_error_each_time() -> None:
    h = Harness(SupervisorSettings(connect_timeout_s=10))
    h.send(StartRequested())
    h.advance(10)
    view = h.sup.view()
    assert view.reason == "no video within 10 s of connecting; retry in 4.6 s"
    assert (view.last_error_kind, view.counters.error_count(ErrorKind.NETWORK)) == (
        ErrorKind.NETWORK,
        1,
    )
    assert 4.5 <= h.advance_until_retry() <= 5.5  # the backoff, as for any network fault
    h.advance(10)  # the retry brings no video either
    assert h.sup.view().counters.error_count(ErrorKind.NETWORK) == 2


def test_a_camera_that_gave_up_cancels_its_wake_up_and_can_be_started_again() -> None:
    h = streaming_harness(SupervisorSettings(backoff=Backoff(max_retries=1)))
    h.fail()
    h.advance_until_retry()
    out = h.fail()
    assert h.sup.state is CameraState.FAILED
    assert ScheduleWake(None) in out and None not in out
    h.send(StartRequested())  # a restart
    assert h.sup.state is CameraState.CONNECTING
    h.stream()
    assert h.sup.state is CameraState.STREAMING


def test_a_camera_stopped_while_reconnecting_starts_again_cleanly() -> None:
    h = streaming_harness()
    h.fail()
    h.send(StopRequested())
    n = len(h.starts())
    out = h.send(StartRequested())
    assert StartPipeline(h.sup.generation) in out and len(h.starts()) == n + 1
    h.stream()
    assert h.sup.state is CameraState.STREAMING


def test_without_an_rng_the_jitter_is_its_own_and_with_a_seed_it_repeats() -> None:
    sup = CameraSupervisor(FakeClock(), SupervisorSettings())
    sup.handle(StartRequested())
    sup.handle(PipelineFailed(sup.generation, ErrorKind.NETWORK, "lost"))
    assert 4.5 <= (sup.view().next_retry_in_s or 0) <= 5.5

    def first_delays(seed: int) -> list[float | None]:
        h = Harness(seed=seed)
        h.send(StartRequested())
        delays = []
        for _ in range(3):
            h.fail()
            delays.append(h.sup.view().next_retry_in_s)
            h.advance_until_retry()
        return delays

    assert first_delays(7) == first_delays(7) != first_delays(8)


@pytest.mark.parametrize(("streamed_s", "next_base_s"), [(29.9, 40), (30, 5)])
def test_the_backoff_starts_again_after_reset_after_s_of_streaming(
    streamed_s: float, next_base_s: float
) -> None:
    h = streaming_harness()
    for _ in range(3):  # 5, 10, 20 s
        h.fail()
        h.advance_until_retry()
        h.stream()
    h.advance(streamed_s)  # Backoff.reset_after_s is 30 s
    h.fail()
    wait = h.sup.view().next_retry_in_s or 0
    assert next_base_s * 0.9 <= wait <= next_base_s * 1.1


# ---- stray wake-ups and late probe results ------------------------------------------------


def test_a_stray_wake_up_only_sets_the_timer_again() -> None:
    """A timer the runtime could not cancel in time, or one that fires early, changes
    nothing: the supervisor asks for its next wake-up again, at the time it is due."""
    h = Harness(SupervisorSettings(connect_timeout_s=10))
    assert h.send(Woke()) == []  # stopped
    h.send(StartRequested())
    h.advance(4)
    assert h.send(Woke()) == [ScheduleWake(6)]  # connecting: the connect timeout
    h.stream()
    assert h.send(Woke()) == []  # streaming
    h.fail()  # retry in 4.6 s, first probe in 0.25 s
    assert h.send(Woke()) == [ScheduleWake(0.25)]
    h.advance(0.25)
    assert len(h.probes) == 1
    retry_in = h.sup.view().next_retry_in_s
    assert h.send(Woke()) == [ScheduleWake(retry_in)]  # a probe is out: no second one
    assert len(h.probes) == 1
    h.advance_until_retry()
    h.fail(ErrorKind.UNAUTHORIZED, "Unauthorized")  # not probed, retried at the cap
    wait = h.sup.view().next_retry_in_s
    assert h.send(Woke()) == [ScheduleWake(wait)] and len(h.probes) == 1


def test_a_probe_answer_that_comes_after_the_retry_began_changes_nothing() -> None:
    h = streaming_harness()
    h.fail()
    h.advance(0.25)
    late = h.probes[-1]  # out, and still unanswered when the backoff retry starts
    h.advance_until_retry()
    assert h.send(ProbeFinished(late, Reach.ANSWERS)) == []
    h.advance(5)  # the attempt runs (its connect timeout is 15 s): no probe meanwhile
    assert h.probes == [late]
    # The attempt fails and a new round of probes begins: the old answer is still stale.
    h.fail()
    h.advance(0.25)
    assert len(h.probes) == 2 and h.probes[-1] != late
    assert h.send(ProbeFinished(late, Reach.ANSWERS)) == []


# ---- retry at once, quick retries ---------------------------------------------------------


def answer_probes(h: Harness, reach: Reach, seconds: float) -> list[tuple[float, str]]:
    """Answer every probe at once with ``reach``; every attempt fails at once. Returns when
    each attempt began (seconds from the start) and why."""
    begin, answered = h.now, len(h.probes)
    attempts: list[tuple[float, str]] = []
    while h.now - begin < seconds:
        assert h.wake_at is not None
        h.advance(h.wake_at - h.now)
        if len(h.probes) > answered:
            answered = len(h.probes)
            h.send(ProbeFinished(h.probes[-1], reach))
        if h.sup.generation != h.stops()[-1]:
            attempts.append((round(h.now - begin, 2), h.sup.view().reason))
            h.fail()
    return attempts


def test_a_camera_lost_that_answers_but_cannot_stream_gets_three_quick_retries() -> None:
    """The loss counts as unreachable: the first probe that answers retries at once. Then
    three quick retries, 1, 2 and 4 s after the failure before each, then only the backoff
    (the fifth failure in a row: 60 s), while the probes go on every 0.25 s."""
    h = streaming_harness()
    h.fail()
    lost_at = h.now
    attempts = answer_probes(h, Reach.ANSWERS, 80)
    assert attempts[:4] == [
        (0.25, "attempt 1 (camera reachable again)"),
        (1.25, "attempt 2 (camera answers; quick retry)"),
        (3.25, "attempt 3 (camera answers; quick retry)"),
        (7.25, "attempt 4 (camera answers; quick retry)"),
    ]
    assert len(attempts) == 5 and attempts[4][1] == "attempt 5 (backoff elapsed)"
    assert 7.25 + 54 <= attempts[4][0] <= 7.25 + 66
    waiting = (lost_at + 10, lost_at + 60)  # after the quick retries, before the backoff's
    probe_times = [t for t, c in h.log if isinstance(c, RunProbe) and waiting[0] < t < waiting[1]]
    assert {round(b - a, 6) for a, b in itertools.pairwise(probe_times)} == {0.25}


def test_a_camera_that_fails_from_the_start_gets_the_quick_retries_too() -> None:
    """A camera refusing for a moment as the NVR starts (503: it still holds the previous
    run's session) is an outage as much as a lost one: three quick retries, 1, 2 and 4 s after
    each failure, then the backoff. It is not assumed away, so no retry at once; and each
    stop and start grants them again, never more than three per start."""
    h = Harness()
    for _ in range(2):
        h.send(StartRequested())
        h.fail()
        attempts = answer_probes(h, Reach.ANSWERS, 80)
        assert attempts[:3] == [
            (1.0, "attempt 1 (camera answers; quick retry)"),
            (3.0, "attempt 2 (camera answers; quick retry)"),
            (7.0, "attempt 3 (camera answers; quick retry)"),
        ]
        # The fourth failure in a row: the backoff's 40 s (5 s doubled three times) ± 10 %.
        assert [why for _, why in attempts[3:]] == ["attempt 4 (backoff elapsed)"]
        assert 7.0 + 36 <= attempts[3][0] <= 7.0 + 44
        assert h.probe_kinds[0] is False  # its first probe asks (DESCRIBE): no port seen closed
        h.send(StopRequested())


def test_a_probe_that_finds_the_camera_away_makes_its_next_answer_a_retry_at_once() -> None:
    h = Harness()
    h.send(StartRequested())
    h.fail()  # failing from the start: not assumed away
    h.advance(0.25)
    h.send(ProbeFinished(h.probes[-1], Reach.OPEN))  # connects, no usable answer
    h.advance(0.25)
    out = h.send(ProbeFinished(h.probes[-1], Reach.ANSWERS))
    assert StartPipeline(h.sup.generation) in out
    assert h.sup.view().reason == "attempt 1 (camera reachable again)"


def test_a_port_that_opens_again_retries_at_once_and_says_so() -> None:
    h = Harness()
    h.send(StartRequested())
    h.fail()
    h.advance(0.25)
    h.send(ProbeFinished(h.probes[-1], Reach.CLOSED))
    h.advance(0.25)
    assert h.probe_kinds == [False, True]
    out = h.send(ProbeFinished(h.probes[-1], Reach.OPEN))
    assert StartPipeline(h.sup.generation) in out
    assert h.sup.view().reason == "attempt 1 (camera port open again)"


@pytest.mark.parametrize("streamed", [True, False], ids=["lost", "never-connected"])
def test_probes_slow_down_exactly_probe_slow_after_s_into_an_outage(streamed: bool) -> None:
    """An outage begins when a streaming camera is lost, or when a camera is started that
    then never connects (here: no video within the 10 s connect timeout)."""
    settings = SupervisorSettings(
        backoff=Backoff(initial_s=10_000, cap_s=10_000),  # no retry in between
        probe_interval_s=0.25,
        probe_slow_interval_s=1.0,
        probe_slow_after_s=60.0,
        connect_timeout_s=10,
    )
    h = Harness(settings)
    h.send(StartRequested())
    if streamed:
        h.stream()
        h.fail()
    began = h.now
    answer_probes(h, Reach.OPEN, 62)
    sent = [t - began for t, c in h.log if isinstance(c, RunProbe)]
    assert [s for s in sent if 59 <= s <= 62] == [59.0, 59.25, 59.5, 59.75, 60.0, 61.0, 62.0]
