"""CameraSupervisor scripts with a fake clock: hours of reconnects in milliseconds."""

from __future__ import annotations

import itertools
import random
import statistics

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
    SupervisorSettings,
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


def test_flapping_port_gets_retries_ever_further_apart() -> None:
    h = streaming_harness()
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
    print("port retries at", [round(t, 2) for t in port_retries])
    assert all(b >= a * 1.9 for a, b in itertools.pairwise(gaps)), gaps
    assert len(port_retries) <= 8


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


def test_not_found_is_its_own_state() -> None:
    h = Harness()
    h.send(StartRequested())
    h.fail(ErrorKind.NOT_FOUND, "Not Found (404)")
    assert h.sup.state is CameraState.NOT_FOUND


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
