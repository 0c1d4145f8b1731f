"""Storage logic with fakes: file layout, retention planning, the catalog's timeline, the
volume marker. Real files and SQLite in a temporary folder, an injected clock; milliseconds."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from nvr_gstreamer.storage.catalog import (
    Catalog,
    GapReason,
    SegmentRow,
    SegmentStatus,
    StaleEpoch,
    Writer,
)
from nvr_gstreamer.storage.layout import is_segment_path, parse_segment_name, segment_path
from nvr_gstreamer.storage.recovery import FileFacts, recover
from nvr_gstreamer.storage.retention import (
    DAY_S,
    DeleteReason,
    Janitor,
    PlannedDelete,
    plan_retention,
)
from nvr_gstreamer.storage.volume import (
    MARKER_NAME,
    StorageState,
    VolumeUsage,
    check_volume,
    claim_root,
)
from tests.conftest import CatalogUrls

NOW = 1_800_000_000.0


def seg(i: int, start: float, size: int = 100, status: SegmentStatus = SegmentStatus.CLOSED):
    return SegmentRow(i, "cam1", f"cam1/d/s{i}.mkv", start, start + 60, 60.0, size, 900, status)


# ---- layout -------------------------------------------------------------------------------


def test_segment_path_layout_and_unique_names_in_one_second() -> None:
    local = datetime(2026, 3, 29, 2, 30, 5)
    taken: set[Path] = set()
    root = Path("/srv/nvr")
    a = segment_path(root, "cam1", local, taken.__contains__)
    taken.add(a)
    b = segment_path(root, "cam1", local, taken.__contains__)
    taken.add(b)
    c = segment_path(root, "cam1", local, taken.__contains__)
    assert a == root / "cam1/20260329/cam1_20260329_023005.mkv"
    assert b.name == "cam1_20260329_023005-1.mkv" and c.name == "cam1_20260329_023005-2.mkv"
    assert parse_segment_name(b.name) == ("cam1", local)
    assert is_segment_path(root, b)
    assert not is_segment_path(root, root / "cam1/20260330/cam1_20260329_023005.mkv")


# Every shape the config's id pattern allows: "_" and "-" anywhere after the first
# character, digits that look like a date, the longest id.
ID_SHAPES = ["cam1", "cam_s", "a-b", "x_20260101", "a_b_c", "0", "a" * 63, "z-_-9"]


@pytest.mark.parametrize("camera", ID_SHAPES)
def test_every_valid_camera_id_names_and_parses_its_segments(camera: str) -> None:
    root = Path("/srv/nvr")
    local = datetime(2026, 3, 29, 2, 30, 5)
    path = segment_path(root, camera, local, lambda p: False)
    assert path.relative_to(root).parts == (camera, "20260329", f"{camera}_20260329_023005.mkv")
    assert parse_segment_name(path.name) == (camera, local)
    assert is_segment_path(root, path)
    assert not is_segment_path(root, root / camera / "20260330" / path.name)
    assert not is_segment_path(root, root / f"{camera}x" / "20260329" / path.name)


@pytest.mark.parametrize("camera", ID_SHAPES)
def test_recovery_adopts_unknown_files_of_every_camera_id(tmp_path: Path, camera: str) -> None:
    catalog = Catalog(tmp_path)
    local = datetime(2026, 3, 29, 2, 30, 5)
    f = segment_path(tmp_path, camera, local, lambda p: False)
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x" * 10)
    facts = FileFacts(frames=30, duration_s=2.0)
    report = recover(catalog, lambda _p: facts, lambda _p: facts, NOW)
    assert report.adopted == 1
    (row,) = catalog.segments(camera)
    assert row.path == f.relative_to(tmp_path).as_posix()
    assert row.start_utc == local.astimezone().timestamp()


def test_recovery_keeps_uploaded_segments_and_prunes_rows_whose_file_vanished(
    tmp_path: Path, catalog_url: str | None
) -> None:
    catalog = Catalog(tmp_path, catalog_url)
    for name in ("up", "gone"):
        catalog.add_segment("cam1", f"cam1/d/{name}.mkv", NOW - 100)
        catalog.close_segment(f"cam1/d/{name}.mkv", NOW - 40, 60.0, 1000, 1500)
    assert catalog.set_object("cam1/d/up.mkv", "cam1/d/up.mkv")  # uploaded, file removed
    facts = FileFacts(frames=30, duration_s=2.0)
    report = recover(catalog, lambda _p: facts, lambda _p: facts, NOW)
    assert report.removed_rows == 1
    assert [(r.path, r.object_key) for r in catalog.segments("cam1")] == [
        ("cam1/d/up.mkv", "cam1/d/up.mkv")
    ]
    assert catalog.not_uploaded() == []
    catalog.close()


def test_day_folder_rolls_over_at_local_midnight() -> None:
    before = datetime(2026, 12, 31, 23, 59, 59)
    after = before + timedelta(seconds=2)
    root = Path("/r")
    assert segment_path(root, "c", before, lambda p: False).parent.name == "20261231"
    assert segment_path(root, "c", after, lambda p: False).parent.name == "20270101"


# ---- retention planning -------------------------------------------------------------------


def test_retention_by_age_deletes_only_what_is_older() -> None:
    rows = [seg(1, NOW - 3 * DAY_S), seg(2, NOW - 2.5 * DAY_S), seg(3, NOW - 0.5 * DAY_S)]
    plan = plan_retention(rows, NOW, retention_days=2, usage=None, min_free_percent=10)
    assert [(d.segment.id, d.reason) for d in plan.deletes] == [
        (1, DeleteReason.AGE),
        (2, DeleteReason.AGE),
    ]


def test_retention_by_space_deletes_oldest_first_until_enough_is_free() -> None:
    rows = [seg(3, NOW - 10, 300), seg(1, NOW - 30, 300), seg(2, NOW - 20, 300)]
    usage = VolumeUsage(total_bytes=10_000, free_bytes=500)  # 5 % free, want 10 %
    plan = plan_retention(rows, NOW, retention_days=0, usage=usage, min_free_percent=10)
    assert [d.segment.id for d in plan.deletes] == [1, 2]
    assert all(d.reason is DeleteReason.SPACE for d in plan.deletes)
    assert plan.bytes_freed == 600 and not plan.short_of_space


def test_uploaded_segments_free_no_local_space_but_age_out_like_the_others() -> None:
    up = replace(seg(1, NOW - 30, 300), object_key="cam1/d/s1.mkv")
    rows = [up, seg(2, NOW - 20, 300), seg(3, NOW - 10, 300)]
    usage = VolumeUsage(total_bytes=10_000, free_bytes=500)  # 5 % free, want 10 %
    plan = plan_retention(rows, NOW, retention_days=0, usage=usage, min_free_percent=10)
    assert [d.segment.id for d in plan.deletes] == [2, 3]  # the local ones, oldest first
    assert plan.bytes_freed == 600 and not plan.short_of_space
    old = plan_retention(rows, NOW + 2 * DAY_S, retention_days=1, usage=None, min_free_percent=0)
    assert [d.segment.id for d in old.deletes] == [1, 2, 3]
    assert all(d.reason is DeleteReason.AGE for d in old.deletes)


def test_retention_never_deletes_a_segment_being_written() -> None:
    rows = [
        seg(1, NOW - 5 * DAY_S, status=SegmentStatus.RECORDING),
        seg(2, NOW - 5 * DAY_S),
        seg(3, NOW - 4 * DAY_S),
    ]
    usage = VolumeUsage(total_bytes=1000, free_bytes=0)
    plan = plan_retention(rows, NOW, 1, usage, 50, protected={"cam1/d/s3.mkv"})
    assert [d.segment.id for d in plan.deletes] == [2]
    assert plan.short_of_space


def test_zero_retention_days_keeps_everything_while_space_lasts() -> None:
    rows = [seg(1, NOW - 900 * DAY_S)]
    usage = VolumeUsage(total_bytes=1000, free_bytes=900)
    assert plan_retention(rows, NOW, 0, usage, 10).deletes == ()


def test_retention_by_age_goes_by_the_end_of_a_file_and_keeps_what_ends_at_the_cutoff() -> None:
    cutoff = NOW - 2 * DAY_S
    rows = [
        seg(1, cutoff - 90),  # ended 30 s before the cutoff
        seg(2, cutoff - 30),  # began before the cutoff, ended after it
        seg(3, cutoff - 60),  # ended exactly at the cutoff: not older than two days
        replace(seg(4, cutoff - 1), end_utc=None),  # no known end: ages by its start
        replace(seg(5, cutoff + 1), end_utc=None),
    ]
    plan = plan_retention(rows, NOW, retention_days=2, usage=None, min_free_percent=10)
    assert [d.segment.id for d in plan.deletes] == [1, 4]
    assert plan.short_of_space is False


def test_retention_counts_the_bytes_it_frees_and_age_deletions_count_towards_space() -> None:
    rows = [
        seg(1, NOW - 5 * DAY_S, 300),
        replace(seg(2, NOW - 4 * DAY_S), size_bytes=None),  # size unknown: frees nothing known
        seg(3, NOW - 3 * DAY_S, 300),
        seg(4, NOW - 10, 300),
    ]
    usage = VolumeUsage(total_bytes=10_000, free_bytes=500)  # 500 short of 10 % free
    plan = plan_retention(rows, NOW, retention_days=2, usage=usage, min_free_percent=10)
    assert [(d.segment.id, d.reason) for d in plan.deletes] == [
        (1, DeleteReason.AGE),
        (2, DeleteReason.AGE),
        (3, DeleteReason.AGE),
    ]
    assert plan.bytes_freed == 600 and plan.short_of_space is False
    # Not enough by age: space takes the oldest of what is left, past what age took.
    plan = plan_retention(rows, NOW, retention_days=4, usage=usage, min_free_percent=10)
    assert [(d.segment.id, d.reason) for d in plan.deletes] == [
        (1, DeleteReason.AGE),
        (2, DeleteReason.SPACE),
        (3, DeleteReason.SPACE),
    ]
    assert plan.bytes_freed == 600 and plan.short_of_space is False


@pytest.mark.parametrize(
    ("free_bytes", "deleted", "short"),
    [
        (1000, [], False),  # exactly the minimum free: nothing to do
        (999, [1], False),  # one byte short: the oldest file goes
        (700, [1], False),  # its 300 bytes make exactly the minimum
        (699, [1, 2], False),
    ],
)
def test_retention_by_space_frees_exactly_up_to_the_minimum(
    free_bytes: int, deleted: list[int], short: bool
) -> None:
    rows = [seg(1, NOW - 30, 300), seg(2, NOW - 20, 300)]
    usage = VolumeUsage(total_bytes=10_000, free_bytes=free_bytes)  # minimum: 1000 (10 %)
    plan = plan_retention(rows, NOW, retention_days=0, usage=usage, min_free_percent=10)
    assert [d.segment.id for d in plan.deletes] == deleted
    assert plan.short_of_space is short


def test_retention_says_when_even_deleting_everything_leaves_too_little_free() -> None:
    usage = VolumeUsage(total_bytes=10_000, free_bytes=999)  # one byte short, nothing to delete
    plan = plan_retention([], NOW, 0, usage, 10)
    assert plan.deletes == () and plan.short_of_space is True
    rows = [replace(seg(1, NOW - 30), size_bytes=None)]  # deleted, but frees nothing known
    plan = plan_retention(rows, NOW, 0, usage, 10)
    assert [d.segment.id for d in plan.deletes] == [1]
    assert plan.bytes_freed == 0 and plan.short_of_space is True


def test_a_fractional_minimum_free_percentage_is_honoured() -> None:
    usage = VolumeUsage(total_bytes=10_000, free_bytes=10)  # 0.1 % free, want 0.5 %
    plan = plan_retention([seg(1, NOW - 30, 100)], NOW, 0, usage, min_free_percent=0.5)
    assert [d.segment.id for d in plan.deletes] == [1]


# ---- catalog and janitor ------------------------------------------------------------------


def test_janitor_removes_rows_then_files_then_empty_day_folders(
    tmp_path: Path, catalog_url: str | None
) -> None:
    catalog = Catalog(tmp_path, catalog_url)
    f = tmp_path / "cam1/20260101/cam1_20260101_000000.mkv"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x" * 10)
    rel = f.relative_to(tmp_path).as_posix()
    catalog.close_segment(rel, NOW + 60, 60, 10, 900, start_utc=NOW, camera="cam1")
    deleted = []
    janitor = Janitor(catalog, deleted.append, lambda _p: None)
    plan = plan_retention(catalog.segments(), NOW + 10 * DAY_S, 1, None, 0)
    assert janitor.execute(plan) == 1
    assert catalog.segments() == [] and not f.exists() and not (tmp_path / "cam1").exists()
    assert len(deleted) == 1


class FullCatalog(Catalog):
    """A catalog on a disk too full for its own writes."""

    def remove_segment(self, rel_path: str) -> None:
        raise sqlite3.OperationalError("database or disk is full")


def test_janitor_on_a_disk_too_full_for_the_catalog_deletes_the_file_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = FullCatalog(tmp_path)
    f = tmp_path / "cam1/20260101/cam1_20260101_000000.mkv"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x" * 10)
    row = replace(seg(1, NOW - 3 * DAY_S), path=f.relative_to(tmp_path).as_posix())
    deleted: list[PlannedDelete] = []
    deferred: list[str] = []
    plan = plan_retention([row], NOW, 1, None, 0)
    assert Janitor(catalog, deleted.append, deferred.append).execute(plan) == 1
    assert not f.exists()
    assert deferred == [row.path]  # its row goes as soon as the catalog can be written
    assert [d.segment for d in deleted] == [row]
    assert (
        "catalog busy or full (database or disk is full): deleting cam1_20260101_000000.mkv first"
        in caplog.messages
    )


def test_janitor_skips_a_file_it_cannot_delete_and_carries_on(
    tmp_path: Path, catalog_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = Catalog(tmp_path, catalog_url)
    day = tmp_path / "cam1/20260101"
    for i in (1, 2, 3):
        f = day / f"s{i}.mkv"
        f.parent.mkdir(parents=True, exist_ok=True)
        if i == 2:
            f.mkdir()  # not a file: cannot be unlinked
            (f / "keep").write_bytes(b"")
        else:
            f.write_bytes(b"x" * 10)
        rel = f.relative_to(tmp_path).as_posix()
        catalog.close_segment(rel, NOW + i + 60, 60, 10, 900, start_utc=NOW + i, camera="cam1")
    deleted: list[PlannedDelete] = []
    plan = plan_retention(catalog.segments(), NOW + 10 * DAY_S, 1, None, 0)
    assert len(plan.deletes) == 3
    assert Janitor(catalog, deleted.append, lambda _p: None).execute(plan) == 2
    assert [d.segment.path for d in deleted] == ["cam1/20260101/s1.mkv", "cam1/20260101/s3.mkv"]
    assert sorted(p.name for p in day.iterdir()) == ["s2.mkv"]
    assert f"could not delete {day / 's2.mkv'}: Is a directory" in caplog.messages


def test_timeline_explains_each_gap(tmp_path: Path, catalog_url: str | None) -> None:
    c = Catalog(tmp_path, catalog_url)
    t = NOW
    c.run_alive(c.begin_run(t), t + 300)
    c.begin_run(t + 400)
    c.close_segment("cam1/d/a.mkv", t + 60, 60, 1, 1, start_utc=t, camera="cam1")
    c.begin_interruption("cam1", GapReason.CAMERA_DOWN, t + 60.5)
    c.close_segment("cam1/d/b.mkv", t + 200, 60, 1, 1, start_utc=t + 140, camera="cam1")
    c.end_interruption("cam1", t + 140)
    c.begin_interruption("cam1", GapReason.RECORDING_OFF, t + 200.2)
    c.end_interruption("cam1", t + 300)
    # nothing recorded about t+300 .. t+400: the recorder was not running
    c.close_segment("cam1/d/c.mkv", t + 460, 60, 1, 1, start_utc=t + 400, camera="cam1")
    tl = c.timeline("cam1", t, t + 460, now_utc=t + 460, current_run=2)
    assert [s.path for s in tl.segments] == ["cam1/d/a.mkv", "cam1/d/b.mkv", "cam1/d/c.mkv"]
    assert [(g.reason, round(g.start_utc - t), round(g.end_utc - t)) for g in tl.gaps] == [
        (GapReason.CAMERA_DOWN, 60, 140),
        (GapReason.RECORDING_OFF, 200, 300),
        (GapReason.NVR_STOPPED, 300, 400),
    ]


def test_catalog_times_are_utc_whatever_the_local_zone(
    tmp_path: Path, catalog_url: str | None
) -> None:
    c = Catalog(tmp_path, catalog_url)
    start = datetime(2026, 10, 25, 0, 30, tzinfo=timezone(timedelta(hours=2))).timestamp()
    c.close_segment("cam1/d/x.mkv", start + 3600, 3600, 1, 1, start_utc=start, camera="cam1")
    (row,) = c.segments("cam1", start + 10, start + 20)
    assert datetime.fromtimestamp(row.start_utc, UTC).hour == 22


# ---- volume identity ----------------------------------------------------------------------


def test_marker_identifies_the_volume(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    vid = claim_root(root)
    assert claim_root(root) == vid  # idempotent
    assert check_volume(root, vid).state is StorageState.OK
    (root / MARKER_NAME).unlink()  # what an unmounted drive's bare mount point looks like
    check = check_volume(root, vid)
    assert check.state is StorageState.UNAVAILABLE and "not mounted" in check.reason
    root.rmdir()
    assert check_volume(root, vid).state is StorageState.UNAVAILABLE


def test_a_file_reported_after_recording_was_switched_off_does_not_end_that_gap(
    tmp_path: Path,
    catalog_url: str | None,
) -> None:
    # splitmuxsink reports a file a GOP after its first frame: switched off in between, the
    # report comes after the interruption began and must not end it (it did: the gap then
    # had no recorded reason and read "camera down").
    c = Catalog(tmp_path, catalog_url)
    t = NOW
    c.begin_run(t)
    c.close_segment("cam1/d/a.mkv", t + 4.0, 4.0, 1, 1, start_utc=t, camera="cam1")
    c.begin_interruption("cam1", GapReason.RECORDING_OFF, t + 4.2)
    c.add_segment("cam1", "cam1/d/b.mkv", t + 4.0)  # reported late: began before the switch
    c.end_interruption("cam1", t + 4.0, file_start=True)
    c.close_segment("cam1/d/b.mkv", t + 4.3, 0.3, 1, 1)
    c.add_segment("cam1", "cam1/d/c.mkv", t + 9.0)  # recording again
    c.end_interruption("cam1", t + 9.0, file_start=True)
    c.close_segment("cam1/d/c.mkv", t + 12.0, 3.0, 1, 1)
    tl = c.timeline("cam1", t, t + 12, now_utc=t + 12, current_run=1)
    assert [(g.reason, round(g.start_utc - t, 1), round(g.end_utc - t, 1)) for g in tl.gaps] == [
        (GapReason.RECORDING_OFF, 4.3, 9.0)
    ]


T = 1_790_000_000.0


@pytest.mark.integration
def test_a_write_under_a_stale_epoch_is_refused_and_leaves_no_row(
    tmp_path: Path, catalog_urls: CatalogUrls
) -> None:
    """Cluster mode's fencing, on PostgreSQL: a camera's lease moved to another node (its
    epoch went up); the old node's writes are refused whole, the new node's go through."""
    url = catalog_urls.new("postgresql")
    old, new = Writer("n1", 1), Writer("n2", 2)
    a = Catalog(tmp_path / "a", url, node="n1")
    b = Catalog(tmp_path / "b", url, node="n2")
    try:
        with a.transaction() as db:
            db.execute("INSERT INTO camera_leases (camera, owner, epoch) VALUES ('cam1', 'n1', 1)")
        a.add_segment("cam1", "cam1/d/a1.mkv", T, old)
        with b.transaction() as db:  # n2 claims cam1
            db.execute("UPDATE camera_leases SET owner='n2', epoch=2 WHERE camera='cam1'")
        with pytest.raises(StaleEpoch):
            a.add_segment("cam1", "cam1/d/a2.mkv", T + 60, old)
        with pytest.raises(StaleEpoch):
            a.close_segment("cam1/d/a1.mkv", T + 60, 60.0, 1000, 1500, camera="cam1", writer=old)
        with pytest.raises(StaleEpoch):
            a.begin_interruption("cam1", GapReason.CAMERA_DOWN, T + 61, old)
        b.add_segment("cam1", "cam1/d/b1.mkv", T + 62, new)
        rows = {r.path: r for r in b.segments("cam1")}
        assert set(rows) == {"cam1/d/a1.mkv", "cam1/d/b1.mkv"}
        assert rows["cam1/d/a1.mkv"].end_utc is None  # the refused close changed nothing
        assert b.timeline("cam1", T, T + 70, T + 70).gaps == ()  # no refused interruption
        # Each node's own rows: recovery and retention of n1 see only n1's files.
        assert [r.path for r in a.segments(mine=True)] == ["cam1/d/a1.mkv"]
        assert [r.path for r in b.segments(mine=True)] == ["cam1/d/b1.mkv"]
    finally:
        a.close()
        b.close()


def test_a_catalog_of_a_newer_program_is_refused_not_guessed_at(
    tmp_path: Path, catalog_url: str | None
) -> None:
    from nvr_gstreamer.storage.schema import MIGRATIONS, SchemaTooNew

    c = Catalog(tmp_path, catalog_url)
    with c.transaction() as db:
        versions = [r["version"] for r in db.execute("SELECT version FROM schema_version")]
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (MIGRATIONS[-1].version + 1,))
    c.close()
    assert versions == [m.version for m in MIGRATIONS]  # each applied once, in order
    with pytest.raises(SchemaTooNew, match="run the newer nvr"):
        Catalog(tmp_path, catalog_url)


def test_a_replayed_segment_start_is_harmless(tmp_path: Path, catalog_url: str | None) -> None:
    """A write kept while the database was away is replayed whole, even when its first try
    got as far as committing the new row (the connection broke at the commit, or the next
    write of the same step failed): the same row, not a duplicate-key error that would hold
    up every write after it."""
    c = Catalog(tmp_path, catalog_url)
    first = c.add_segment("cam1", "cam1/d/a.mkv", T)
    again = c.add_segment("cam1", "cam1/d/a.mkv", T)
    assert again == first
    assert [r.path for r in c.segments("cam1")] == ["cam1/d/a.mkv"]
    c.close()
