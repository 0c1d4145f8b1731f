"""EventTracker fed scripted motion results: starts, ends after the off delay, the length cap,
peaks, close(), recalibrations, and the invariants of any sequence (hypothesis)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr_gstreamer.camera.events import (
    EndReason,
    EventChange,
    EventEnded,
    EventPeaked,
    EventStarted,
    EventTracker,
)
from nvr_gstreamer.camera.motion import Box, MotionResult

BOX: Box = (0.25, 0.5, 0.125, 0.25)


def moving(t: float, score: float = 0.01, boxes: tuple[Box, ...] = (BOX,)) -> MotionResult:
    return MotionResult(t, score, boxes)


def still(t: float, score: float = 0.0) -> MotionResult:
    return MotionResult(t, score)


def feed(tracker: EventTracker, results: Iterable[MotionResult]) -> list[EventChange]:
    out: list[EventChange] = []
    for result in results:
        out += tracker.update(result)
    return out


def frames(start: float, end: float, fps: float = 5.0) -> list[float]:
    """Frame times from start up to (not including) end."""
    return [start + i / fps for i in range(round((end - start) * fps))]


def ended(changes: Iterable[EventChange]) -> list[EventEnded]:
    return [c for c in changes if isinstance(c, EventEnded)]


def test_motion_starts_an_event_at_once_with_its_first_score_and_boxes() -> None:
    tracker = EventTracker(off_delay_s=5.0, max_length_s=60.0)
    assert tracker.update(still(0.0)) == []
    out = tracker.update(moving(0.2, score=0.03))
    assert out == [EventStarted(1, 0.2, 0.03, (BOX,)), EventPeaked(1, 0.2, 0.03, (BOX,))]


def test_an_event_ends_at_its_last_motion_once_off_delay_has_passed_without_motion() -> None:
    tracker = EventTracker(off_delay_s=5.0, max_length_s=60.0)
    feed(tracker, [moving(t) for t in frames(10.0, 12.0, fps=4)])  # last motion at 11.75
    quiet = [tracker.update(still(t)) for t in frames(12.0, 16.75, fps=4)]
    assert all(out == [] for out in quiet)  # 16.5: 4.75 s since the last motion
    (end,) = tracker.update(still(16.75))  # 5 s: the event is over
    assert end == EventEnded(
        event_id=1,
        start=10.0,
        end=11.75,
        reason=EndReason.MOTION_STOPPED,
        peak_score=0.01,
        peak_t=10.0,
        motion_frames=8,
        area=BOX,
    )
    assert tracker.update(still(30.0)) == []
    assert tracker.close(31.0) is None  # nothing left to end


def test_gaps_shorter_than_off_delay_do_not_split_an_event() -> None:
    tracker = EventTracker(off_delay_s=3.0, max_length_s=60.0)
    times = [0.0, 2.9, 5.7, 8.5]  # each gap just under 3 s
    out = feed(tracker, [r for t in times for r in (moving(t), still(t + 0.1))])
    assert [type(c) for c in out] == [EventStarted, EventPeaked]
    assert ended(feed(tracker, [still(11.4)])) == []
    (end,) = ended(feed(tracker, [still(11.5)]))
    assert (end.start, end.end, end.motion_frames) == (0.0, 8.5, 4)


def test_motion_after_exactly_off_delay_starts_a_new_event() -> None:
    tracker = EventTracker(off_delay_s=3.0, max_length_s=60.0)
    tracker.update(moving(1.0))
    out = tracker.update(moving(4.0))
    assert [type(c) for c in out] == [EventEnded, EventStarted, EventPeaked]
    first, second, peak = out
    assert isinstance(first, EventEnded) and (first.event_id, first.start, first.end) == (1, 1, 1)
    assert isinstance(second, EventStarted) and (second.event_id, second.start) == (2, 4.0)
    assert isinstance(peak, EventPeaked) and peak.event_id == 2


def test_motion_that_never_stops_makes_a_chain_of_events_each_shorter_than_max_length() -> None:
    tracker = EventTracker(off_delay_s=5.0, max_length_s=10.0)
    updates = {t: tracker.update(moving(t)) for t in frames(0.0, 35.0, fps=4)}
    out = [c for changes in updates.values() for c in changes]
    starts = [c for c in out if isinstance(c, EventStarted)]
    ends = ended(out)
    assert [s.start for s in starts] == [0.0, 10.0, 20.0, 30.0]
    assert [(e.start, e.end) for e in ends] == [(0, 9.75), (10, 19.75), (20, 29.75)]
    assert all(e.reason is EndReason.MAX_LENGTH for e in ends)
    assert [e.motion_frames for e in ends] == [40, 40, 40]
    # A split ends the old event and starts the next in the same update, in that order.
    assert [type(c) for c in updates[10.0]] == [EventEnded, EventStarted, EventPeaked]
    assert [c.event_id for c in updates[10.0]] == [1, 2, 2]


def test_a_quiet_moment_at_the_cap_lets_the_event_end_for_lack_of_motion() -> None:
    tracker = EventTracker(off_delay_s=5.0, max_length_s=10.0)
    feed(tracker, [moving(0.0), moving(4.0), moving(8.0)])
    assert feed(tracker, [still(t) for t in (10.0, 12.0)]) == []  # the cap alone ends nothing
    (end,) = tracker.update(still(13.0))
    assert (end.start, end.end, end.reason) == (0.0, 8.0, EndReason.MOTION_STOPPED)


def test_motion_past_the_cap_after_a_quiet_moment_ends_the_event_at_its_motion_before() -> None:
    tracker = EventTracker(off_delay_s=5.0, max_length_s=10.0)
    feed(tracker, [moving(0.0), moving(4.0), moving(8.0), still(10.0)])
    out = tracker.update(moving(12.5))
    assert [type(c) for c in out] == [EventEnded, EventStarted, EventPeaked]
    end, start, _ = out
    assert isinstance(end, EventEnded) and (end.end, end.reason) == (8.0, EndReason.MAX_LENGTH)
    assert isinstance(start, EventStarted) and start.start == 12.5


def test_a_peak_is_reported_each_time_the_score_rises_and_the_end_names_the_highest() -> None:
    tracker = EventTracker(off_delay_s=5.0, max_length_s=60.0)
    b2: Box = (0.5, 0.0, 0.25, 0.25)
    results = [
        moving(1.0, 0.02),
        moving(1.2, 0.05),
        moving(1.4, 0.05),
        moving(1.6, 0.04),
        moving(1.8, 0.08, (b2,)),
        moving(2.0, 0.01),
    ]
    peaks = [[c for c in tracker.update(r) if isinstance(c, EventPeaked)] for r in results]
    assert peaks == [
        [EventPeaked(1, 1.0, 0.02, (BOX,))],
        [EventPeaked(1, 1.2, 0.05, (BOX,))],
        [],  # equal to the peak: not higher
        [],
        [EventPeaked(1, 1.8, 0.08, (b2,))],
        [],
    ]
    end = tracker.close(2.2)
    assert end is not None
    assert (end.peak_score, end.peak_t, end.motion_frames) == (0.08, 1.8, 6)


def test_the_area_is_the_union_of_every_box_of_the_event() -> None:
    tracker = EventTracker(off_delay_s=5.0, max_length_s=60.0)
    feed(
        tracker,
        [
            moving(0.0, boxes=((0.5, 0.5, 0.1, 0.1), (0.75, 0.25, 0.125, 0.125))),
            moving(0.2, boxes=((0.25, 0.625, 0.25, 0.125),)),
            moving(0.4, boxes=((0.5, 0.5, 0.125, 0.125),)),
        ],
    )
    end = tracker.close(0.6)
    assert end is not None
    assert end.area == pytest.approx((0.25, 0.25, 0.625, 0.5))


def test_close_ends_the_event_in_progress_and_says_why() -> None:
    tracker = EventTracker(off_delay_s=5.0, max_length_s=60.0)
    feed(tracker, [moving(1.0), moving(2.0), still(3.0)])
    end = tracker.close(4.0)
    assert end is not None
    assert (end.event_id, end.start, end.end, end.reason) == (1, 1.0, 2.0, EndReason.CLOSED)
    assert tracker.close(5.0) is None  # idempotent
    # After a close, motion starts the next event.
    assert [type(c) for c in tracker.update(moving(6.0))] == [EventStarted, EventPeaked]
    late = tracker.close(11.0)  # no result since the off delay passed: it ended anyway
    assert late is not None
    assert (late.event_id, late.end, late.reason) == (2, 6.0, EndReason.MOTION_STOPPED)


def test_recalibrated_results_never_start_an_event_nor_prolong_one() -> None:
    tracker = EventTracker(off_delay_s=2.0, max_length_s=60.0)
    recalibrations = [MotionResult(t, 0.9, recalibrated=True) for t in frames(0.0, 5.0)]
    assert feed(tracker, recalibrations) == []
    tracker.update(moving(5.0))
    out = feed(tracker, [MotionResult(t, 0.9, recalibrated=True) for t in frames(5.25, 7.25, 4)])
    (end,) = ended(out)
    assert (end.start, end.end, end.motion_frames) == (5.0, 5.0, 1)


def test_min_length_holds_back_the_start_until_the_motion_has_lasted_that_long() -> None:
    tracker = EventTracker(off_delay_s=2.0, max_length_s=60.0, min_length_s=1.0)
    out = feed(tracker, [moving(t, score=0.01 * (i + 1)) for i, t in enumerate([0.0, 0.4, 0.8])])
    # Tentative: its peaks are reported (the caller keeps the frame), not yet its start.
    assert [c for c in out if not isinstance(c, EventPeaked)] == []
    assert [c.t for c in out if isinstance(c, EventPeaked)] == [0.0, 0.4, 0.8]
    assert {c.event_id for c in out if isinstance(c, EventPeaked)} == {1}
    out = tracker.update(moving(1.0, score=0.001))
    assert out == [EventStarted(1, 0.0, 0.01, (BOX,))]
    end = tracker.close(1.2)
    assert end is not None
    assert (end.event_id, end.start, end.end, end.peak_t) == (1, 0.0, 1.0, 0.8)


def test_motion_shorter_than_min_length_makes_no_event_and_leaves_its_id_to_the_next() -> None:
    tracker = EventTracker(off_delay_s=2.0, max_length_s=60.0, min_length_s=1.0)
    out = feed(tracker, [moving(0.0), moving(0.75), still(2.75)])  # 0.75 s of motion, then quiet
    assert [type(c) for c in out] == [EventPeaked]
    feed(tracker, [moving(5.0), moving(5.5)])
    assert tracker.close(5.75) is None  # still tentative: dropped
    out = feed(tracker, [moving(t) for t in (7.0, 7.5, 8.0)])
    assert [c for c in out if isinstance(c, EventStarted)] == [EventStarted(1, 7.0, 0.01, (BOX,))]


def test_time_going_backwards_is_an_error() -> None:
    tracker = EventTracker(off_delay_s=2.0, max_length_s=60.0)
    tracker.update(moving(5.0))
    tracker.update(still(5.0))  # the same time again is fine
    with pytest.raises(ValueError, match=r"time 4.9 s is before the previous result's 5.0 s"):
        tracker.update(moving(4.9))
    with pytest.raises(ValueError, match="before the previous"):
        tracker.close(4.0)
    with pytest.raises(ValueError, match=r"^time nan s is before the previous result's 5.0 s$"):
        tracker.update(still(float("nan")))


@pytest.mark.parametrize(
    ("off_delay_s", "max_length_s", "min_length_s", "message"),
    [
        (0.0, 60.0, 0.0, "off_delay_s must be more than 0, not 0.0"),
        (-1.0, 60.0, 0.0, "off_delay_s must be more than 0, not -1.0"),
        (5.0, 60.0, -0.5, r"need 0 <= min_length_s < max_length_s, not -0.5 and 60.0"),
        (5.0, 10.0, 10.0, r"need 0 <= min_length_s < max_length_s, not 10.0 and 10.0"),
        (5.0, 0.0, 0.0, r"need 0 <= min_length_s < max_length_s, not 0.0 and 0.0"),
    ],
)
def test_settings_out_of_range_are_rejected(
    off_delay_s: float, max_length_s: float, min_length_s: float, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        EventTracker(off_delay_s, max_length_s, min_length_s)


def test_the_smallest_settings_are_accepted() -> None:
    tracker = EventTracker(off_delay_s=0.001, max_length_s=0.002, min_length_s=0.0)
    out = feed(tracker, [moving(0.0), moving(0.002)])
    assert [type(c) for c in out] == [
        EventStarted,
        EventPeaked,
        EventEnded,
        EventStarted,
        EventPeaked,
    ]


# ---- invariants of any sequence -------------------------------------------------------------

steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.1, 0.2, 0.2, 0.2, 0.5, 1.0, 3.0, 7.0]),  # time since the last
        st.sampled_from(["motion", "motion", "still", "recalibrated"]),
        st.integers(1, 100),  # score, in hundredths
    ),
    max_size=200,
)


def results_of(script: list[tuple[float, str, int]]) -> list[MotionResult]:
    t, out = 0.0, []
    for dt, kind, score in script:
        t += dt
        if kind == "motion":
            out.append(moving(t, score / 100))
        else:
            out.append(MotionResult(t, score / 100, recalibrated=kind == "recalibrated"))
    return out


def run(tracker: EventTracker, results: list[MotionResult], close_at: float) -> list[EventChange]:
    out = feed(tracker, results)
    end = tracker.close(close_at)
    return out + ([end] if end else [])


@given(
    steps,
    st.sampled_from([0.5, 2.0, 5.0]),
    st.sampled_from([1.0, 4.0, 10.0]),
    st.sampled_from([0.0, 0.5]),
)
def test_events_never_overlap_nor_outlast_the_cap_and_contain_their_motion(
    script: list[tuple[float, str, int]],
    off_delay_s: float,
    max_length_s: float,
    min_length_s: float,
) -> None:
    results = results_of(script)
    close_at = results[-1].t + 1.0 if results else 0.0
    out = run(EventTracker(off_delay_s, max_length_s, min_length_s), results, close_at)
    starts = {c.event_id: c for c in out if isinstance(c, EventStarted)}
    ends = ended(out)
    # Every event that started has ended (close), once, in order, after its start.
    assert [e.event_id for e in ends] == list(starts) == list(range(1, len(ends) + 1))
    for e in ends:
        assert out.index(starts[e.event_id]) < out.index(e)
        assert e.start == starts[e.event_id].start
        assert min_length_s <= e.end - e.start < max_length_s
        assert e.start <= e.peak_t <= e.end
        assert e.motion_frames >= 1
    for before, after in itertools.pairwise(ends):
        assert before.end < after.start
    # Every motion result lies in an event (when no event is too short to count).
    if min_length_s == 0.0:
        for r in results:
            if r.motion:
                assert any(e.start <= r.t <= e.end for e in ends)
        assert sum(e.motion_frames for e in ends) == sum(r.motion for r in results)
    # Peaks are of an event in progress and only ever rise within it.
    # (With min_length_s, a dropped tentative event leaves its id and its peaks to the next.)
    peaks: dict[int, float] = {}
    for c in out:
        if isinstance(c, EventPeaked):
            assert c.score > peaks.get(c.event_id, 0.0) or min_length_s > 0.0
            peaks[c.event_id] = c.score
    for e in ends:
        assert peaks[e.event_id] == e.peak_score
