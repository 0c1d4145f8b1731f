"""The timeline of days and many cameras (``GET /api/timeline/range``) says exactly what the
day timeline says, faster: footage merged as the catalog's index yields the rows, only the rows
near the range read, each hole explained from the interruptions near it. Pure logic and SQLite
in a temporary folder."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nvr_gstreamer.storage import catalog as catalog_module
from nvr_gstreamer.storage.catalog import CATALOG_NAME, Catalog
from nvr_gstreamer.storage.timeline import (
    GapReason,
    Interruption,
    _explain_hole,
    _holes,
    _merge,
    build_gaps,
    footage_spans,
    sorted_footage,
)
from nvr_gstreamer.testing.catalog_fill import fill_catalog
from tests.conftest import BACKENDS, CatalogUrls

T0 = 1_800_000_000.0
DAY = 86_400.0
REASONS = [r for r in GapReason if r is not GapReason.NVR_STOPPED]


# ---- merging footage in one pass ----------------------------------------------------------

segment_lists = st.lists(
    st.tuples(
        st.floats(0, 600, allow_nan=False),
        st.one_of(st.none(), st.floats(-5, 120, allow_nan=False)),  # no end: being written
    ),
    max_size=30,
)


@settings(max_examples=400, deadline=None)
@given(segment_lists, st.floats(0, 800), st.sampled_from([0.0, 0.5, 2.0]), st.floats(-10, 700))
def test_sorted_footage_is_footage_spans_of_rows_in_order_of_start(
    rows: list[tuple[float, float | None]], now: float, min_gap: float, since: float
) -> None:
    segs = sorted(((s, None if d is None else s + d) for s, d in rows), key=lambda r: r[0])
    spans, count = sorted_footage(segs, now, min_gap, since)
    assert spans == footage_spans(segs, now, min_gap)
    assert count == sum(1 for _s, e in segs if (now if e is None else e) > since)
    # Merged spans are their own footage: the catalog hands them to build_gaps as files.
    assert footage_spans(spans, now, min_gap) == spans


# ---- each hole explained from the interruptions near it -----------------------------------

times = st.floats(min_value=0, max_value=3600, allow_nan=False)


@st.composite
def facts(draw: st.DrawFn) -> tuple[list, list, list, float, float, float]:
    segs = [(s, s + d) for s, d in draw(st.lists(st.tuples(times, st.floats(0, 300)), max_size=20))]
    ints = [
        Interruption(draw(st.sampled_from(REASONS)), s, None if open_ else s + d)
        for s, d, open_ in draw(
            st.lists(st.tuples(times, st.floats(0, 900), st.booleans()), max_size=12)
        )
    ]
    runs = [(s, s + d) for s, d in draw(st.lists(st.tuples(times, st.floats(0, 2000)), max_size=4))]
    start = draw(st.floats(0, 1800))
    return segs, ints, runs, start, start + draw(st.floats(0.001, 3600)), draw(st.floats(0, 4000))


@settings(max_examples=400, deadline=None)
@given(facts())
def test_each_hole_gets_the_reasons_the_whole_lists_would_give(f: tuple) -> None:
    """The sweep that hands each hole only the interruptions and runs near it (a week of a
    flapping camera) changes nothing: the old loop, every hole against every fact, agrees."""
    segs, ints, runs, start, end, now = f
    footage, gaps = build_gaps("c", start, end, segs, ints, runs, now)
    spans = [(i.reason, i.start_utc, now if i.end_utc is None else max(i.start_utc, i.end_utc))
             for i in ints]  # fmt: skip
    run_spans = [(s, max(s, e)) for s, e in runs]
    expected = [
        (reason, s, e)
        for a, b in _holes(footage, start, min(end, now))
        for reason, s, e in _merge(_explain_hole(a, b, spans, run_spans))
    ]
    assert [(g.reason, g.start_utc, g.end_utc) for g in gaps] == expected


def test_a_week_of_a_camera_that_reconnected_every_two_minutes_is_quick() -> None:
    """5,040 outages, each a hole with its interruption: 7.7 s when every hole looked at every
    interruption, 60 ms since."""
    files, outages = [], []
    for i in range(int(7 * DAY / 120)):
        t = T0 + i * 120
        files.append((t, t + 60))
        outages.append(Interruption(GapReason.CAMERA_DOWN, t + 65, t + 120))
    began = time.perf_counter()
    end = T0 + 7 * DAY
    footage, gaps = build_gaps("c", T0, end, files, outages, [(T0, end)], end)
    assert time.perf_counter() - began < 1.5
    assert len(footage) == len(gaps) == len(files)
    assert {g.reason for g in gaps} == {GapReason.CAMERA_DOWN}


# ---- the catalog: the range timeline is the day timeline ----------------------------------

spans_in_days = st.floats(0, 4 * DAY, allow_nan=False)


@st.composite
def catalogs(draw: st.DrawFn) -> dict:
    """Facts over four days, with files of up to three days (longer than the two hours
    before a range that are searched for ordinary ones) and files still being written."""
    segs = [
        (s, None if open_ else s + d)
        for s, d, open_ in draw(
            st.lists(
                st.tuples(
                    spans_in_days,
                    st.one_of(st.floats(0, 120), st.floats(0, 3 * 7200), st.floats(0, 3 * DAY)),
                    st.integers(0, 4).map(lambda i: i == 0),  # a fifth still being written
                ),
                max_size=25,
            )
        )
    ]
    ints = [
        (draw(st.sampled_from(REASONS)).value, s, None if open_ else s + d)
        for s, d, open_ in draw(
            st.lists(st.tuples(spans_in_days, st.floats(0, DAY), st.booleans()), max_size=8)
        )
    ]
    run_list = st.lists(st.tuples(spans_in_days, st.floats(0, 2 * DAY)), max_size=4)
    runs = [(s, s + d) for s, d in draw(run_list)]
    start = draw(st.floats(0, 4 * DAY))
    return {
        "segments": segs,
        "interruptions": ints,
        "runs": runs,
        "start": start,
        "end": start + draw(st.floats(0.001, 2 * DAY)),
        "now": draw(st.floats(0, 5 * DAY)),
    }


def _write(root: Path, facts: dict, url: str | None = None, others: dict | None = None) -> Catalog:
    """A catalog of ``facts`` on cam1 (its runs are the recorder's), and the segments and
    interruptions of ``others`` (facts too) on cam2."""
    c = Catalog(root, url)
    cams = [("cam1", facts)] + ([("cam2", others)] if others is not None else [])
    with c.transaction() as db:
        for cam, f in cams:
            db.executemany(
                "INSERT INTO segments (camera, path, start_utc, end_utc, status) VALUES (?, ?, ?, ?, ?)",
                [(cam, f"{cam}/d/{i}.mkv", T0 + s, None if e is None else T0 + e,
                  "recording" if e is None else "closed")
                 for i, (s, e) in enumerate(f["segments"])],
            )  # fmt: skip
            db.executemany(
                "INSERT INTO interruptions (camera, reason, start_utc, end_utc) VALUES (?, ?, ?, ?)",
                [(cam, r, T0 + s, None if e is None else T0 + e) for r, s, e in f["interruptions"]],
            )  # fmt: skip
        db.executemany(
            "INSERT INTO runs (start_utc, alive_utc) VALUES (?, ?)",
            [(T0 + s, T0 + e) for s, e in facts["runs"]],
        )
    return c


# Found by this test on PostgreSQL (once in a few runs): equal interruptions of two reasons
# came back in one order for the day and in another for the range, and the gap's reason with it.
_EQUAL_STARTS = {
    "segments": [],
    "interruptions": [
        *[("camera_down", 0.0, 0.0)] * 4,
        *[("camera_down", 0.0, 1.0)] * 2,
        ("camera_down", 1.0, 1.0),
        ("recording_off", 0.0, 1.0),
    ],
    "runs": [],
    "start": 0.0,
    "end": 2.0,
    "now": 1.0,
}
_EQUAL_OTHERS = {
    "segments": [],
    "interruptions": [("camera_down", 0.0, 1.0)] * 3,
    "runs": [],
    "start": 0.0,
    "end": 1.0,
    "now": 0.0,
}


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs(), catalogs(), st.sampled_from([None, 1]))
@example(_EQUAL_STARTS, _EQUAL_OTHERS, None)
def test_the_range_timeline_is_the_day_timeline_without_the_segments(
    catalog_urls: CatalogUrls, backend: str, facts: dict, others: dict, current_run: int | None
) -> None:
    """Of each camera, read alone or with others in one read (what the API does)."""
    with tempfile.TemporaryDirectory() as folder:
        c = _write(Path(folder), facts, catalog_urls.new(backend), others)
        try:
            args = (T0 + facts["start"], T0 + facts["end"], T0 + facts["now"])
            days = [c.timeline(cam, *args, current_run=current_run) for cam in ("cam1", "cam2")]
            alone = c.footage_timeline("cam1", *args, current_run=current_run)
            both = c.footage_timelines(["cam2", "cam1"], *args, current_run=current_run)
        finally:
            c.close()
    for got, day in [(alone, days[0]), (both[1], days[0]), (both[0], days[1])]:
        assert got.camera == day.camera
        assert got.footage == day.footage
        assert got.gaps == day.gaps
        assert got.segment_count == len(day.segments)


def _plan(db: sqlite3.Connection, sql: str, params: int) -> str:
    return " ".join(str(r[3]) for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", (1,) * params))


def test_a_range_reads_the_index_from_shortly_before_it_not_every_older_row() -> None:
    with tempfile.TemporaryDirectory() as folder:
        Catalog(Path(folder)).close()
        with contextlib.closing(sqlite3.connect(Path(folder) / CATALOG_NAME)) as db:
            plan = _plan(db, catalog_module._SPANS, 4)
            long_plan = _plan(db, catalog_module._LONG_SPANS, 3)
    # Bounded on both sides, read from the index alone (no table row per file).
    assert (
        "COVERING INDEX segments_by_camera_time (camera=? AND start_utc>? AND start_utc<?)" in plan
    )
    assert "INDEX segments_long" in long_plan


def test_an_old_catalog_gets_the_new_indexes_and_keeps_its_rows(tmp_path: Path) -> None:
    fill_catalog(tmp_path, ["cam1"], T0, T0 + DAY, still_recording=False)
    with contextlib.closing(sqlite3.connect(tmp_path / CATALOG_NAME)) as db, db:
        db.executescript(
            "DROP INDEX segments_by_camera_time; DROP INDEX segments_long;"
            " CREATE INDEX segments_by_camera ON segments (camera, start_utc);"
            " DROP TABLE schema_version; ALTER TABLE segments DROP COLUMN node;"
            " ALTER TABLE segments DROP COLUMN epoch; ALTER TABLE runs DROP COLUMN node;"
            " ALTER TABLE segments DROP COLUMN object_key;"
        )  # what the catalog of an earlier version had (no numbered schema either)
        rows = db.execute("SELECT COUNT(*) FROM segments").fetchone()[0]
    c = Catalog(tmp_path)
    try:
        with contextlib.closing(sqlite3.connect(tmp_path / CATALOG_NAME)) as db:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
            assert db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == rows
            versions = [r[0] for r in db.execute("SELECT version FROM schema_version")]
        assert {"segments_by_camera_time", "segments_long"} <= names
        assert "segments_by_camera" not in names
        assert versions == [1, 2, 3, 4]
        tl = c.footage_timeline("cam1", T0, T0 + DAY, T0 + DAY)
        assert tl.segment_count == rows
        assert tl.footage == c.timeline("cam1", T0, T0 + DAY, T0 + DAY).footage
    finally:
        c.close()


def test_a_filled_week_reads_the_same_by_range_as_by_day(tmp_path: Path) -> None:
    """The benchmark's catalog (outages of every reason, a stop of the recorder), smaller."""
    stop = T0 + 3.5 * DAY
    fill_catalog(
        tmp_path, ["cam1", "cam2"], T0, T0 + 4 * DAY,
        segment_s=600, outages_per_day=6, stopped=[(stop, stop + 600)], seed=7,
    )  # fmt: skip
    c = Catalog(tmp_path)
    try:
        for cam in ("cam1", "cam2"):
            got = c.footage_timeline(cam, T0 + 1000, T0 + 4 * DAY, T0 + 4 * DAY + 30)
            day = c.timeline(cam, T0 + 1000, T0 + 4 * DAY, T0 + 4 * DAY + 30)
            assert (got.footage, got.gaps, got.segment_count) == (
                day.footage,
                day.gaps,
                len(day.segments),
            )
            assert GapReason.NVR_STOPPED in {g.reason for g in got.gaps}
    finally:
        c.close()
