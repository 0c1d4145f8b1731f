"""The timeline never contradicts the footage: regression cases for what was seen in a long
fault run, invariants over arbitrary catalog facts, and a model of one camera's day (outages,
switching off, storage faults, clean stops and crashes) whose truth the timeline must tell.
Pure logic and SQLite in a temporary folder; milliseconds per case."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nvr_gstreamer.storage.catalog import Catalog
from nvr_gstreamer.storage.recovery import FileFacts, recover
from nvr_gstreamer.storage.timeline import (
    Gap,
    GapReason,
    Interruption,
    build_gaps,
    day_bounds,
    footage_spans,
)
from tests.conftest import BACKENDS, CatalogUrls

T0 = 1_800_000_000.0
MIN_GAP = 2.0


def _gaps(tl_gaps: tuple[Gap, ...] | list[Gap]) -> list[tuple[GapReason, float, float]]:
    return [(g.reason, round(g.start_utc - T0, 3), round(g.end_utc - T0, 3)) for g in tl_gaps]


def _seg(c: Catalog, name: str, start: float, end: float) -> None:
    c.close_segment(f"cam1/d/{name}.mkv", end, end - start, 1, 1, start_utc=start, camera="cam1")


# ---- what was seen ------------------------------------------------------------------------


def test_a_later_interruption_never_stretches_an_earlier_gap(
    tmp_path: Path, catalog_url: str | None
) -> None:
    """Seen: an 'nvr_stopped' gap ran over minutes of footage up to a later interruption,
    whose own gap then ended before it began."""
    c = Catalog(tmp_path, catalog_url)
    c.begin_run(T0)
    _seg(c, "a", T0 + 10, T0 + 100)
    _seg(c, "b", T0 + 110, T0 + 700)  # a 10 s hole at 100..110 with no recorded reason
    c.begin_interruption("cam1", GapReason.CAMERA_DOWN, T0 + 700)
    c.end_interruption("cam1", T0 + 760)
    _seg(c, "c", T0 + 760, T0 + 800)
    c.run_alive(1, T0 + 800)
    tl = c.timeline("cam1", T0, T0 + 800, now_utc=T0 + 800)
    assert all(g.end_utc > g.start_utc for g in tl.gaps)
    assert _gaps(tl.gaps) == [
        (GapReason.CAMERA_DOWN, 0, 10),  # connecting at start-up: running, no footage
        (GapReason.CAMERA_DOWN, 100, 110),
        (GapReason.CAMERA_DOWN, 700, 760),
    ]


def test_the_seconds_before_a_stall_was_noticed_are_camera_down(
    tmp_path: Path, catalog_url: str | None
) -> None:
    """Seen: the first seconds of a stall (last frame .. detection) were 'nvr_stopped'."""
    c = Catalog(tmp_path, catalog_url)
    c.begin_run(T0)
    _seg(c, "a", T0, T0 + 60)
    c.begin_interruption("cam1", GapReason.CAMERA_DOWN, T0 + 65)  # noticed 5 s later
    c.end_interruption("cam1", T0 + 90)
    _seg(c, "b", T0 + 90, T0 + 120)
    c.run_alive(1, T0 + 120)
    tl = c.timeline("cam1", T0, T0 + 120, now_utc=T0 + 120)
    assert _gaps(tl.gaps) == [(GapReason.CAMERA_DOWN, 60, 90)]


def test_one_outage_with_several_reconnect_attempts_is_one_gap(
    tmp_path: Path, catalog_url: str | None
) -> None:
    """Seen: three adjacent 'camera_down' gaps for one outage."""
    c = Catalog(tmp_path, catalog_url)
    c.begin_run(T0)
    _seg(c, "a", T0, T0 + 60)
    for attempt in (60, 65, 75, 95):  # every failed attempt reports the camera down again
        c.begin_interruption("cam1", GapReason.CAMERA_DOWN, T0 + attempt)
    c.end_interruption("cam1", T0 + 130)
    _seg(c, "b", T0 + 130, T0 + 150)
    c.run_alive(1, T0 + 150)
    tl = c.timeline("cam1", T0, T0 + 150, now_utc=T0 + 150)
    assert _gaps(tl.gaps) == [(GapReason.CAMERA_DOWN, 60, 130)]


def test_nvr_stopped_only_where_no_run_covers(tmp_path: Path, catalog_url: str | None) -> None:
    c = Catalog(tmp_path, catalog_url)
    run1 = c.begin_run(T0)
    _seg(c, "a", T0, T0 + 60)
    c.run_alive(run1, T0 + 61)  # clean stop at +61
    run2 = c.begin_run(T0 + 300)
    _seg(c, "b", T0 + 301, T0 + 400)
    c.run_alive(run2, T0 + 400)
    tl = c.timeline("cam1", T0, T0 + 400, now_utc=T0 + 400)
    assert _gaps(tl.gaps) == [
        (GapReason.CAMERA_DOWN, 60, 61),
        (GapReason.NVR_STOPPED, 61, 300),
        (GapReason.CAMERA_DOWN, 300, 301),  # running, the camera not delivering yet
    ]


def test_the_future_is_neither_footage_nor_gap(tmp_path: Path, catalog_url: str | None) -> None:
    c = Catalog(tmp_path, catalog_url)
    c.begin_run(T0)
    c.add_segment("cam1", "cam1/d/open.mkv", T0 + 5)  # being written
    tl = c.timeline("cam1", T0, T0 + 86_400, now_utc=T0 + 100, current_run=1)
    assert tl.footage == ((T0 + 5, T0 + 100),)
    assert _gaps(tl.gaps) == [(GapReason.CAMERA_DOWN, 0, 5)]


def test_crash_recovery_ends_the_run_and_open_interruptions_at_the_last_frame(
    tmp_path: Path,
    catalog_url: str | None,
) -> None:
    c = Catalog(tmp_path, catalog_url)
    c.begin_run(T0)
    c.run_alive(1, T0 + 50)  # last heartbeat
    c.add_segment("cam1", "cam1/d/a.mkv", T0)  # being written when the recorder was killed
    c.begin_interruption("cam2", GapReason.CAMERA_DOWN, T0 + 20)
    (tmp_path / "cam1/d").mkdir(parents=True)
    (tmp_path / "cam1/d/a.mkv").write_bytes(b"x")
    recover(c, lambda _p: FileFacts(900, 58.0), lambda _p: FileFacts(900, 58.0), T0 + 500)
    c.begin_run(T0 + 500)
    c.run_alive(2, T0 + 600)
    tl1 = c.timeline("cam1", T0, T0 + 600, now_utc=T0 + 600)
    tl2 = c.timeline("cam2", T0, T0 + 600, now_utc=T0 + 600)
    assert _gaps(tl1.gaps) == [(GapReason.NVR_STOPPED, 58, 500), (GapReason.CAMERA_DOWN, 500, 600)]
    assert _gaps(tl2.gaps) == [
        (GapReason.CAMERA_DOWN, 0, 58),
        (GapReason.NVR_STOPPED, 58, 500),
        (GapReason.CAMERA_DOWN, 500, 600),
    ]


def test_file_boundaries_are_footage_and_real_holes_are_gaps() -> None:
    files = [(T0, T0 + 60), (T0 + 60.07, T0 + 120), (T0 + 121.9, T0 + 180), (T0 + 182, T0 + 240)]
    footage, gaps = build_gaps("c", T0, T0 + 240, files, [], [(T0, T0 + 240)], T0 + 240)
    assert footage == [(T0, T0 + 180), (T0 + 182, T0 + 240)]
    assert _gaps(gaps) == [(GapReason.CAMERA_DOWN, 180, 182)]


def test_unexplained_time_takes_the_reason_that_follows_else_the_one_before() -> None:
    run = [(T0, T0 + 100)]
    # Running, no footage, no reason, then the disk filled: it was the disk all along.
    _f, gaps = build_gaps(
        "c", T0, T0 + 40, [(T0, T0 + 10), (T0 + 30, T0 + 40)],
        [Interruption(GapReason.DISK_FULL, T0 + 15, T0 + 30)], run, T0 + 40,
    )  # fmt: skip
    assert _gaps(gaps) == [(GapReason.DISK_FULL, 10, 30)]
    # Switched off (ended early, nothing after it): the rest of the hole is still "off".
    _f, gaps = build_gaps(
        "c", T0 - 5, T0 + 40, [(T0 + 30, T0 + 40)],
        [Interruption(GapReason.RECORDING_OFF, T0 + 5, T0 + 10)], run, T0 + 40,
    )  # fmt: skip
    assert _gaps(gaps) == [(GapReason.NVR_STOPPED, -5, 0), (GapReason.RECORDING_OFF, 0, 30)]


def test_unexplained_time_never_borrows_a_reason_from_across_the_hole() -> None:
    # Running 0..5 with nothing said, stopped 5..10, switched off 10..20, footage from 20:
    # the first seconds are the camera's, not "off" (the reason at the hole's far end).
    _f, gaps = build_gaps(
        "cam9", T0, T0 + 30, [(T0 + 20, T0 + 30)],
        [Interruption(GapReason.RECORDING_OFF, T0 + 10, T0 + 20)],
        [(T0, T0 + 5), (T0 + 10, T0 + 30)], T0 + 30,
    )  # fmt: skip
    assert _gaps(gaps) == [
        (GapReason.CAMERA_DOWN, 0, 5),
        (GapReason.NVR_STOPPED, 5, 10),
        (GapReason.RECORDING_OFF, 10, 20),
    ]
    assert {g.camera for g in gaps} == {"cam9"}
    # Disk full first, then running with nothing said until the footage: still the disk.
    _f, gaps = build_gaps(
        "c", T0, T0 + 30, [(T0 + 20, T0 + 30)],
        [Interruption(GapReason.DISK_FULL, T0, T0 + 8)], [(T0, T0 + 30)], T0 + 30,
    )  # fmt: skip
    assert _gaps(gaps) == [(GapReason.DISK_FULL, 0, 20)]


def test_a_file_of_no_duration_covers_no_time() -> None:
    files = [(T0, T0 + 10), (T0 + 11.5, T0 + 11.5), (T0 + 13, T0 + 20)]
    footage, gaps = build_gaps("c", T0, T0 + 20, files, [], [(T0, T0 + 20)], T0 + 20)
    assert footage == [(T0, T0 + 10), (T0 + 13, T0 + 20)]
    assert _gaps(gaps) == [(GapReason.CAMERA_DOWN, 10, 13)]


def test_an_interruption_of_no_length_explains_nothing() -> None:
    """The catalog ends an open interruption when the next begins, at the same instant when
    the next is dated back before it: one of no length. It must not split the hole."""
    run = [(T0, T0 + 30)]
    files = [(T0, T0 + 10), (T0 + 30, T0 + 40)]
    later = Interruption(GapReason.RECORDING_OFF, T0 + 20, T0 + 30)
    expected = [(GapReason.RECORDING_OFF, 10, 30)]  # the seconds before it were "off" too
    _f, gaps = build_gaps("c", T0, T0 + 40, files, [later], run, T0 + 40)
    assert _gaps(gaps) == expected
    empty = Interruption(GapReason.DISK_FULL, T0 + 15, T0 + 15)
    _f, gaps = build_gaps("c", T0, T0 + 40, files, [empty, later], run, T0 + 40)
    assert _gaps(gaps) == expected


def test_a_file_that_ends_where_the_range_begins_is_no_footage_of_it() -> None:
    footage, gaps = build_gaps(
        "c", T0, T0 + 20, [(T0 - 60, T0)], [], [(T0 - 60, T0 + 20)], T0 + 20, min_gap_s=0.5
    )
    assert footage == []
    assert _gaps(gaps) == [(GapReason.CAMERA_DOWN, 0, 20)]


def test_day_bounds_follow_local_midnights() -> None:
    start, end = day_bounds(date(2026, 11, 29))
    assert 82_800 <= end - start <= 90_000


# ---- invariants over arbitrary facts ------------------------------------------------------

times = st.floats(min_value=0, max_value=3600, allow_nan=False)
REASONS = [r for r in GapReason if r is not GapReason.NVR_STOPPED]


@st.composite
def facts(draw: st.DrawFn) -> tuple[list, list, list, float, float, float]:
    segs = [
        (s, None if draw(st.booleans()) and i == 0 else s + d)
        for i, (s, d) in enumerate(draw(st.lists(st.tuples(times, st.floats(0, 600)), max_size=12)))
    ]
    ints = [
        Interruption(draw(st.sampled_from(REASONS)), s, None if open_ else s + d)
        for s, d, open_ in draw(
            st.lists(st.tuples(times, st.floats(0, 900), st.booleans()), max_size=8)
        )
    ]
    runs = [(s, s + d) for s, d in draw(st.lists(st.tuples(times, st.floats(0, 2000)), max_size=4))]
    start = draw(st.floats(0, 1800))
    end = start + draw(st.floats(0.001, 3600))
    now = draw(st.floats(0, 4000))
    return segs, ints, runs, start, end, now


def _measure(spans: list[tuple[float, float]]) -> float:
    return sum(e - s for s, e in spans)


@settings(max_examples=400, deadline=None)
@given(facts())
# A footage span made only of the short hole between a file ending at the range's start and
# one starting at its horizon (found by hypothesis).
@example(([(0.0, 0.5), (1.0, 2.0)], [], [], 0.5, 1.5, 1.0))
def test_footage_and_gaps_partition_the_range(f: tuple) -> None:
    segs, ints, runs, start, end, now = f
    footage, gaps = build_gaps("c", start, end, segs, ints, runs, now, MIN_GAP)
    horizon = min(end, now)
    pieces = sorted(
        [(s, e, None) for s, e in footage] + [(g.start_utc, g.end_utc, g) for g in gaps]
    )
    if horizon <= start:
        assert pieces == []
        return
    # A partition: in order, no overlap, no hole, from the start to the horizon.
    assert pieces[0][0] == start and pieces[-1][1] == horizon
    for (_s1, e1, _a), (s2, _e2, _b) in pairwise(pieces):
        assert e1 == s2
    for s, e, _x in pieces:
        assert e > s  # every piece has positive length
    # Adjacent gaps never share a reason; footage pieces never touch each other.
    for (_s1, _e1, a), (_s2, _e2, b) in pairwise(pieces):
        assert (a is None) != (b is None) or (
            a is not None and b is not None and a.reason != b.reason
        )
    # Footage is the files' time, plus only holes shorter than MIN_GAP between files.
    covered = footage_spans(segs, now, 0.0)  # the files' own time, merged, nothing bridged
    short_holes = [(e1, s2) for (_a, e1), (s2, _b) in pairwise(covered) if s2 - e1 < MIN_GAP]
    for fs, fe in footage:
        cursor = fs
        for s, e in [*covered, (fe, fe)]:
            if e <= cursor or s >= fe:
                if s >= fe and cursor < fe:
                    assert any(a <= cursor and fe <= b for a, b in short_holes), (fs, fe)
                    cursor = fe
                continue
            if s > cursor:  # not a file here: must be inside a short hole between files
                assert any(a <= cursor and s <= b for a, b in short_holes), (fs, fe, cursor)
            cursor = max(cursor, e)
    # ... and every hole of MIN_GAP or more is a gap.
    for (_s1, e1), (s2, _e2) in pairwise(footage):
        assert s2 - e1 >= MIN_GAP
    # "nvr_stopped" only where the recorder did not run.
    for g in gaps:
        if g.reason is GapReason.NVR_STOPPED:
            assert not any(s < g.end_utc and e > g.start_utc and e > s for s, e in runs), g


# ---- a model of one camera's day ----------------------------------------------------------

ACTIONS = [
    "pass",
    "camera_down",
    "camera_up",
    "switch_off",
    "switch_on",
    "disk_full",
    "storage_gone",
    "storage_ok",
    "stop",
    "start",
    "crash",
]


@dataclass
class Model:
    """One camera and the recorder, driving the catalog the way the runtime does, and
    remembering the truth: at each instant, footage or the reason there is none."""

    c: Catalog
    t: float = T0
    running: bool = True
    cam_up: bool = True
    wanted: bool = True
    storage: GapReason | None = None  # DISK_FULL, STORAGE_UNAVAILABLE or None (ok)
    run_id: int = 0
    heartbeat: float = T0
    seg: tuple[str, float] | None = None  # open segment (path, start)
    latest_end: float = T0
    n: int = 0
    reason: GapReason | None = None  # the open interruption the catalog knows
    crashed_written: float = 0.0  # seconds in the file a crash left open
    truth: list[tuple[float, float, GapReason | None]] = field(default_factory=list)
    unknowable: list[tuple[float, float]] = field(default_factory=list)

    def effective(self) -> GapReason | None:
        if not self.running:
            return GapReason.NVR_STOPPED
        if not self.wanted:
            return GapReason.RECORDING_OFF
        if self.storage is not None:
            return self.storage
        if not self.cam_up:
            return GapReason.CAMERA_DOWN
        return None  # recording

    def advance(self, dt: float, connect_s: float) -> None:
        end = self.t + dt
        why = self.effective()
        if why is None and self.seg is None:
            # (Re)connecting: no footage yet, the previous reason still holds.
            opens = min(end, self.t + connect_s)
            self.truth.append((self.t, opens, self.reason or GapReason.CAMERA_DOWN))
            if self.reason is None:
                self.unknowable.append((self.t, opens))
            self.t = opens
            if self.t < end:
                self.n += 1
                self.seg = (f"cam1/d/s{self.n}.mkv", self.t)
                self.c.add_segment("cam1", self.seg[0], self.t)
                self.c.end_interruption("cam1", self.t)
                self.reason = None
        if why is None and self.seg is not None:
            self.truth.append((self.t, end, None))
        elif why is not None:
            self.truth.append((self.t, end, why))
        if self.running:
            while self.heartbeat + 10 <= end:
                self.heartbeat += 10
                self.c.run_alive(self.run_id, self.heartbeat)
        self.t = end

    def close_segment(self) -> None:
        if self.seg is not None:
            path, start = self.seg
            (self.c.root / path).parent.mkdir(parents=True, exist_ok=True)
            (self.c.root / path).write_bytes(b"x")  # recovery keeps rows whose file exists
            self.c.close_segment(path, self.t, self.t - start, 1, 1)
            self.latest_end = max(self.latest_end, self.t)
            self.seg = None

    def note(self, at: float) -> None:
        """The runtime tells the catalog why the camera is not recorded (if it knows)."""
        why = self.effective()
        if why is None or why is GapReason.NVR_STOPPED:
            return
        self.c.begin_interruption("cam1", why, at)
        self.reason = why

    def act(self, action: str, noticed_after_s: float, dt: float) -> None:
        before = self.effective()
        if action == "camera_down" and self.cam_up:
            self.cam_up = False
            if before is None and self.running:
                writing = self.seg is not None
                self.close_segment()
                # Dated back to the last frame, or noticed later: both must read the same.
                # Not yet writing (recording just switched on, the first file not begun), the
                # runtime still has the camera's last frame (it streams while not recorded)
                # and dates the outage back to it, ending the recording_off still open.
                at = self.t + min(noticed_after_s, dt / 2) if writing else self.t
                if at > self.t:
                    self.c.begin_interruption("cam1", GapReason.CAMERA_DOWN, at)
                    self.reason = GapReason.CAMERA_DOWN
                    return
                self.note(self.t)
        elif action == "camera_up":
            self.cam_up = True
        elif action == "switch_off" and self.wanted:
            self.wanted = False
            if self.running:
                self.close_segment()
                self.note(self.t)
        elif action == "switch_on" and not self.wanted:
            self.wanted = True
            if self.running:
                self.note(self.t)
        elif action in ("disk_full", "storage_gone"):
            new = GapReason.DISK_FULL if action == "disk_full" else GapReason.STORAGE_UNAVAILABLE
            if self.storage is not new:
                self.storage = new
                if self.running and self.wanted:
                    self.close_segment()
                    self.note(self.t)
        elif action == "storage_ok" and self.storage is not None:
            self.storage = None
            if self.running:
                self.note(self.t)
        elif action == "stop" and self.running:
            self.close_segment()
            self.c.close_open_interruptions(self.t)
            self.c.run_alive(self.run_id, self.t)
            self.reason = None
            self.running = False
        elif action == "crash" and self.running:
            # kill -9: the open file keeps its frames up to now; the catalog learns nothing.
            written = 0.0
            if self.seg is not None:
                path, start = self.seg
                (self.c.root / path).parent.mkdir(parents=True, exist_ok=True)
                (self.c.root / path).write_bytes(b"x")
                written = self.t - start
                self.latest_end = self.t
            # What the recorder did between its last sign of life and the crash is unknown.
            self.unknowable.append((max(self.heartbeat, self.latest_end), self.t))
            self.running = False
            self.seg = None
            self.reason = None
            self.crashed_written = written
        elif action == "start" and not self.running:
            written = self.crashed_written
            recover(
                self.c, lambda _p: FileFacts(10, written), lambda _p: FileFacts(10, 1.0), self.t
            )
            self.crashed_written = 0.0
            self.running = True
            self.run_id = self.c.begin_run(self.t)
            self.heartbeat = self.t
            self.reason = None
            self.note(self.t)


steps = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.floats(0.5, 400),  # time until the next action
        st.floats(0.2, 3.0),  # connect delay after a camera returns
        st.sampled_from([0.0, 0.0, 5.0, 25.0]),  # how late an outage was noticed
    ),
    max_size=25,
)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
# Found by hypothesis: the camera dropped while recording was just switched on (no file yet).
@example(
    [("switch_off", 1.0, 0.2, 0.0), ("switch_on", 1.0, 3.0, 0.0), ("camera_down", 1.0, 0.2, 5.0)]
)
def test_the_timeline_tells_the_truth_of_a_day(
    catalog_urls: CatalogUrls, backend: str, plan: list
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        c = Catalog(Path(tmp), catalog_urls.new(backend))
        m = Model(c)
        m.run_id = c.begin_run(T0)
        m.advance(1.0, 0.5)
        for action, dt, connect_s, noticed in plan:
            m.act(action, noticed, dt)
            m.advance(dt, connect_s)
        # Whoever reads the timeline is a running recorder: after a crash it has recovered.
        if not m.running:
            m.act("start", 0.0, 0.0)
        tl = c.timeline("cam1", T0, T0 + 86_400, now_utc=m.t, current_run=m.run_id)
        c.close()

    def shown(x: float) -> GapReason | None:
        if any(s <= x < e for s, e in tl.footage):
            return None
        (g,) = [g for g in tl.gaps if g.start_utc <= x < g.end_utc]
        return g.reason

    for s, e, why in m.truth:
        for x in (s, (s + e) / 2, e - 1e-6):
            if not (s <= x < e) or any(a - 0.01 <= x <= b + 0.01 for a, b in m.unknowable):
                continue
            # Holes shorter than MIN_GAP between files may show as footage.
            if why is not None and e - s < MIN_GAP and shown(x) is None:
                continue
            assert shown(x) == why, (x - T0, why, _gaps(tl.gaps), m.truth)


@pytest.mark.parametrize("noticed", [0.0, 5.0, 25.0])
def test_model_single_outage(noticed: float) -> None:
    """The model itself, on one hand-checked day: an outage, noticed late or at once."""
    with tempfile.TemporaryDirectory() as tmp:
        c = Catalog(Path(tmp))
        m = Model(c)
        m.run_id = c.begin_run(T0)
        m.advance(100, 1.0)
        m.act("camera_down", noticed, 60)
        m.advance(60, 1.0)
        m.act("camera_up", 0, 40)
        m.advance(40, 1.0)
        tl = c.timeline("cam1", T0, T0 + 200, now_utc=T0 + 200)
        c.close()
    assert _gaps(tl.gaps) == [(GapReason.CAMERA_DOWN, 0, 1), (GapReason.CAMERA_DOWN, 100, 161)]
