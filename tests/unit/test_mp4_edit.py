"""The edit-list arithmetic of storage/mp4_edit.py, as properties (hypothesis): a cropped
edit list shows exactly what the old one showed from the new start on; milliseconds."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from nvr_gstreamer.storage.mp4_edit import (
    UNITY_RATE,
    Edit,
    Mp4EditError,
    crop_edits,
    presentation_of,
)

TIMESCALES = st.sampled_from([1000, 1500, 3000, 8000, 15360, 16000, 44100, 48000, 90000])


@st.composite
def edit_lists(draw: st.DrawFn) -> tuple[list[Edit], int, int]:
    """(edits, movie timescale, media timescale): empty and normal edits, as writers make."""
    movie_ts, media_ts = draw(TIMESCALES), draw(TIMESCALES)
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        duration = draw(st.integers(1, 20 * movie_ts))
        if draw(st.booleans()) and not edits:  # a late start: an empty edit first
            edits.append(Edit(duration, -1))
        else:
            edits.append(Edit(duration, draw(st.integers(0, 30 * media_ts))))
    return edits, movie_ts, media_ts


def media_at(edits: list[Edit], movie_ts: int, media_ts: int, t: Fraction) -> Fraction | None:
    """The media time (ticks, exact) shown at presentation time ``t``; None: nothing."""
    at = Fraction(0)
    for e in edits:
        end = at + Fraction(e.duration, movie_ts)
        if at <= t < end:
            return None if e.media_time < 0 else e.media_time + (t - at) * media_ts
        at = end
    return None


def total(edits: list[Edit] | tuple[Edit, ...], movie_ts: int) -> Fraction:
    return Fraction(sum(e.duration for e in edits), movie_ts)


@given(edit_lists(), st.fractions(0, 100), st.fractions(Fraction(1, 100), 100), st.data())
def test_the_cropped_list_shows_what_the_old_showed_from_skip_on(
    case: tuple[list[Edit], int, int], skip: Fraction, length: Fraction, data: st.DataObject
) -> None:
    edits, movie_ts, media_ts = case
    new = list(crop_edits(edits, 0, movie_ts, media_ts, skip, length))
    old_total = total(edits, movie_ts)
    # Duration: the window, clipped to what the old list showed, to the nearest tick.
    expected = max(Fraction(0), min(skip + length, old_total) - skip)
    assert sum(e.duration for e in new) == round(expected * movie_ts)
    # Any instant of the new presentation, away from rounded edges, maps where the old did.
    tick = Fraction(1, movie_ts)
    new_total = total(new, movie_ts)
    if new_total <= 4 * tick:
        return
    t = data.draw(st.fractions(2 * tick, new_total - 2 * tick))
    near_edge = any(
        abs(t + skip - b) <= 2 * tick
        for b in [sum((Fraction(e.duration, movie_ts) for e in edits[:i]), Fraction(0))
                  for i in range(len(edits) + 1)]
    )  # fmt: skip
    if near_edge:
        return
    now, then = media_at(new, movie_ts, media_ts, t), media_at(edits, movie_ts, media_ts, t + skip)
    event("compared")
    assert (now is None) == (then is None), (new, edits, t)
    if now is not None and then is not None:
        # Each cut is rounded to the nearest tick of each timescale: one tick of each at most.
        assert abs(now - then) <= 1 + Fraction(media_ts, movie_ts), (new, edits, t)


@given(edit_lists())
def test_cropping_nothing_away_changes_nothing(case: tuple[list[Edit], int, int]) -> None:
    edits, movie_ts, media_ts = case
    assert list(crop_edits(edits, 0, movie_ts, media_ts, Fraction(0), total(edits, movie_ts))) == (
        edits
    )


@given(edit_lists(), st.fractions(0, 40), st.fractions(0, 40), st.fractions(1, 40))
def test_two_crops_are_one_crop(
    case: tuple[list[Edit], int, int], s1: Fraction, s2: Fraction, length: Fraction
) -> None:
    """An export trimmed twice is the export trimmed once (to a tick of each timescale)."""
    edits, movie_ts, media_ts = case
    once = crop_edits(edits, 0, movie_ts, media_ts, s1 + s2, length)
    first = crop_edits(edits, 0, movie_ts, media_ts, s1, s2 + length)
    twice = crop_edits(first, 0, movie_ts, media_ts, s2, length)
    assert abs(sum(e.duration for e in once) - sum(e.duration for e in twice)) <= 2
    assert len(once) == len(twice) or abs(len(once) - len(twice)) == 1  # a sliver may vanish
    for a, b in zip(once, twice, strict=False):
        assert (a.media_time < 0) == (b.media_time < 0)
        if a.media_time >= 0:
            assert abs(a.media_time - b.media_time) <= 2 + 2 * media_ts // movie_ts


def test_without_an_edit_list_the_whole_media_plays_from_zero() -> None:
    # 10 s of media at 90 kHz, movie at 1 kHz; cut 2.5 s to 6 s.
    new = crop_edits(None, 900_000, 1000, 90_000, Fraction(5, 2), Fraction(7, 2))
    assert new == (Edit(3500, 225_000),)
    assert crop_edits(None, 900_000, 1000, 90_000, Fraction(20), Fraction(1)) == ()


def test_a_late_track_keeps_its_empty_edit_until_cut_past_it() -> None:
    # Audio starting 24 ms late (mp4mux's empty edit), movie timescale 3000, audio 16 kHz.
    edits = [Edit(72, -1), Edit(5184, 0)]
    assert crop_edits(edits, 27648, 3000, 16000, Fraction(1, 100), Fraction(1)) == (
        Edit(42, -1),
        Edit(2958, 0),
    )
    assert crop_edits(edits, 27648, 3000, 16000, Fraction(3, 10), Fraction(1)) == (
        Edit(3000, round((Fraction(3, 10) - Fraction(24, 1000)) * 16000)),
    )


def test_presentation_of_follows_the_edit_holding_the_sample() -> None:
    edits = [Edit(72, -1), Edit(5184, 200)]  # B-frame delay: media starts at 200
    assert presentation_of(200, edits, 3000, 1500) == Fraction(24, 1000)
    assert presentation_of(350, edits, 3000, 1500) == Fraction(24, 1000) + Fraction(150, 1500)
    assert presentation_of(100, edits, 3000, 1500) == Fraction(24, 1000) - Fraction(100, 1500)
    assert presentation_of(30, None, 3000, 1500) == Fraction(30, 1500)
    with pytest.raises(Mp4EditError):
        presentation_of(0, [Edit(10, -1)], 3000, 1500)


def test_edits_at_another_rate_are_refused() -> None:
    with pytest.raises(Mp4EditError, match="rate 2"):
        crop_edits([Edit(3000, 0, 2 * UNITY_RATE)], 0, 1000, 1000, Fraction(1), Fraction(1))
