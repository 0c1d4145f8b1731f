"""The reconnect backoff as a value: doubling up to the cap, jitter within its bounds, the limit."""

from __future__ import annotations

import random

import pytest

from nvr_gstreamer.camera.backoff import Backoff


class Draws(random.Random):
    """A random source that returns the given draws, in turn."""

    def __init__(self, *draws: float) -> None:
        super().__init__()
        self._draws = list(draws)

    def random(self) -> float:
        return self._draws.pop(0)


LOWEST, MIDDLE, HIGHEST = 0.0, 0.5, 1.0 - 1e-12  # random() is in [0, 1)


def test_delays_double_from_the_initial_one_up_to_the_cap() -> None:
    b = Backoff(initial_s=5.0, factor=2.0, cap_s=60.0, jitter=0.0)
    assert [b.delay(n, Draws(MIDDLE)) for n in range(1, 9)] == [5, 10, 20, 40, 60, 60, 60, 60]
    assert b.delay(0, Draws(MIDDLE)) == 5  # before any failure: the initial delay
    slow = Backoff(initial_s=1.0, factor=3.0, cap_s=20.0, jitter=0.0)
    assert [slow.delay(n, Draws(MIDDLE)) for n in range(1, 5)] == [1, 3, 9, 20]


def test_jitter_spreads_each_delay_over_its_whole_range_and_never_beyond() -> None:
    b = Backoff(initial_s=5.0, cap_s=60.0, jitter=0.1)
    delays = sorted(b.delay(1, Draws(d)) for d in (LOWEST, MIDDLE, HIGHEST))
    assert delays == pytest.approx([4.5, 5.0, 5.5])
    at_cap = sorted(b.delay(9, Draws(d)) for d in (LOWEST, MIDDLE, HIGHEST))
    assert at_cap == pytest.approx([54.0, 60.0, 66.0])


def test_permanent_faults_wait_the_cap_within_the_same_jitter() -> None:
    b = Backoff(initial_s=5.0, cap_s=60.0, jitter=0.1)
    delays = sorted(b.cap_delay(Draws(d)) for d in (LOWEST, MIDDLE, HIGHEST))
    assert delays == pytest.approx([54.0, 60.0, 66.0])
    assert Backoff(cap_s=30.0, jitter=0.0).cap_delay(Draws(HIGHEST)) == 30.0


@pytest.mark.parametrize("max_retries", [1, 2, 5])
def test_gives_up_once_max_retries_attempts_have_failed(max_retries: int) -> None:
    b = Backoff(max_retries=max_retries)
    assert [b.gives_up(n) for n in range(max_retries + 2)] == [False] * max_retries + [True] * 2


def test_zero_max_retries_never_gives_up() -> None:
    assert not any(Backoff(max_retries=0).gives_up(n) for n in range(10_000))
