"""The simulator's capture clock: frames at the capture cadence, never stamped after arrival."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from nvr_gstreamer.simulator.capture_clock import MAX_LATE_NS, CaptureClock

MS = 1_000_000
FRAME = 66_666_667  # 15 fps


def stamps(arrivals_ms: list[float], captures: list[int] | None = None) -> list[float]:
    """Stamps (ms) for frames arriving at ``arrivals_ms``, captured one frame apart unless
    ``captures`` (frame numbers) says otherwise; captures start at encoder time 7 s."""
    clock = CaptureClock()
    frames = captures if captures is not None else list(range(len(arrivals_ms)))
    return [
        clock.stamp(round(a * MS), 7_000 * MS + n * FRAME) / MS
        for a, n in zip(arrivals_ms, frames, strict=True)
    ]


def test_the_first_frame_is_stamped_at_its_arrival() -> None:
    assert stamps([123.0]) == [123.0]


def test_a_frame_delayed_by_load_gets_its_place_back() -> None:
    got = stamps([100.0, 166.7, 245.3, 300.0])
    assert [round(b - a, 3) for a, b in itertools.pairwise(got)] == [66.667] * 3


def test_a_frame_that_arrives_early_keeps_its_arrival_and_the_cadence_follows_it() -> None:
    # The first frame came late (a slow start): the second, on time, sets the cadence.
    got = stamps([100.0, 140.0, 207.0, 290.0])
    assert got == [100.0, 140.0, 206.666667, 273.333334]


def test_a_frame_is_never_stamped_after_it_arrived() -> None:
    got = stamps([0.0, 30.0, 31.0, 32.0])
    assert got == [0.0, 30.0, 31.0, 32.0]


def test_a_frame_the_encoder_left_out_leaves_its_interval() -> None:
    got = stamps([0.0, 66.0, 210.0], captures=[0, 1, 3])
    assert got == [0.0, 66.0, 199.333334]


def test_a_frame_later_than_the_limit_starts_a_new_cadence() -> None:
    late_ms = MAX_LATE_NS / MS
    got = stamps([0.0, 66.7 + late_ms, 133.4 + late_ms])
    assert got[1] == 66.7 + late_ms
    assert got[2] == round(got[1] + FRAME / MS, 6)
    at_limit = stamps([0.0, FRAME / MS + late_ms])
    assert at_limit[1] == round(FRAME / MS, 6)


def test_a_capture_time_that_does_not_move_on_starts_a_new_cadence() -> None:
    assert stamps([0.0, 80.0, 150.0], captures=[5, 5, 0]) == [0.0, 80.0, 150.0]


def test_the_limit_is_the_one_given() -> None:
    clock = CaptureClock(max_late_ns=10 * MS)
    assert clock.stamp(0, 0) == 0
    assert clock.stamp(FRAME + 10 * MS, FRAME) == FRAME
    assert clock.stamp(2 * FRAME + 21 * MS, 2 * FRAME) == 2 * FRAME + 21 * MS


@given(
    st.lists(st.integers(min_value=0, max_value=400 * MS), min_size=1, max_size=60),
    st.integers(min_value=0, max_value=10**12),
)
def test_delays_within_the_limit_give_the_capture_cadence_from_the_quickest_frame(
    delays: list[int], start: int
) -> None:
    # Frames captured one interval apart, each delivered after a delay, in order (a frame
    # held up holds up the ones behind it): once the quickest frame so far has arrived, every
    # stamp is its capture time plus that least delay.
    arrivals = list(
        itertools.accumulate((start + n * FRAME + d for n, d in enumerate(delays)), max)
    )
    late = [a - start - n * FRAME for n, a in enumerate(arrivals)]
    clock = CaptureClock()
    got = [clock.stamp(a, n * FRAME) for n, a in enumerate(arrivals)]
    assert all(a <= b for a, b in itertools.pairwise(got))
    for n, (stamp, arrival) in enumerate(zip(got, arrivals, strict=True)):
        assert stamp <= arrival
        assert stamp == start + n * FRAME + min(late[: n + 1])
