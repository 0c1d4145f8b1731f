"""A recording session's files get their wall-clock starts from one offset: consecutive files
meet exactly where their frames do, whatever the jitter of each file's own measurement."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nvr_gstreamer.engine.sessions import CLOCK_STEP_S, WallAnchor

jitter = st.floats(min_value=-0.2, max_value=0.2)


@given(st.lists(st.tuples(st.floats(0.1, 120.0), jitter), min_size=2, max_size=40))
def test_starts_keep_the_running_time_apart_whatever_each_measurement_says(
    files: list[tuple[float, float]],
) -> None:
    anchor, rt, starts, rts = WallAnchor(), 5.0, [], []
    true_offset = 1_800_000_000.0
    for length, noise in files:
        starts.append(anchor.start_utc(true_offset + rt + noise, rt))
        rts.append(rt)
        rt += length
    for i in range(1, len(starts)):
        assert abs((starts[i] - starts[i - 1]) - (rts[i] - rts[i - 1])) < 1e-6
    # The first file's own measurement (to the float resolution at 1.8e9 s: 2.4e-7).
    assert abs(starts[0] - (true_offset + 5.0)) <= 0.2 + 1e-6


def test_a_step_of_the_wall_clock_is_followed() -> None:
    anchor = WallAnchor()
    assert anchor.start_utc(1000.0, 10.0) == 1000.0
    assert anchor.start_utc(1002.03, 12.0) == 1002.0  # jitter: the session's offset holds
    stepped = anchor.start_utc(1014.0 + CLOCK_STEP_S + 0.5, 14.0)
    assert stepped == 1014.0 + CLOCK_STEP_S + 0.5  # NTP stepped the clock: follow it
    assert anchor.start_utc(1016.0 + CLOCK_STEP_S + 0.5, 16.0) == stepped + 2.0
