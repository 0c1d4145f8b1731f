"""Motion events in the catalog, and retention keeping them with their footage: real SQLite in
a temporary folder, no clock but the numbers given; milliseconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvr_gstreamer.storage.catalog import Catalog, SegmentRow, SegmentStatus
from nvr_gstreamer.storage.event_store import ID_BLOCK, EventStore
from nvr_gstreamer.storage.retention import DAY_S, DeleteReason, plan_retention
from tests.conftest import CatalogUrls

NOW = 1_800_000_000.0
BOX = (0.1, 0.2, 0.3, 0.4)


def seg(i: int, start: float, camera: str = "cam1") -> SegmentRow:
    return SegmentRow(
        i, camera, f"{camera}/d/s{i}.mkv", start, start + 60, 60.0, 100, 900,
        SegmentStatus.CLOSED,
    )  # fmt: skip


def _store(tmp_path: Path, url: str | None) -> tuple[Catalog, EventStore]:
    catalog = Catalog(tmp_path, url)
    return catalog, EventStore(catalog)


def test_an_event_from_start_to_end_with_its_thumbnail(
    tmp_path: Path, catalog_url: str | None
) -> None:
    _catalog, store = _store(tmp_path, catalog_url)
    eid = store.new_id()
    store.begin(eid, "cam1", NOW, 0.01, [BOX])
    (open_,) = store.events("cam1", NOW - 10, NOW + 10)
    assert (open_.id, open_.end_utc, open_.end_reason, open_.has_thumbnail) == (
        eid, None, None, False,
    )  # fmt: skip
    store.end(eid, NOW + 8, 0.05, NOW + 3, [BOX, (0.5, 0.5, 0.1, 0.1)], "motion_stopped", b"JPG")
    (row,) = store.events("cam1", NOW - 10, NOW + 10)
    assert (row.end_utc, row.score, row.peak_utc, row.end_reason) == (
        NOW + 8, 0.05, NOW + 3, "motion_stopped",
    )  # fmt: skip
    assert row.boxes == (BOX, (0.5, 0.5, 0.1, 0.1)) and row.has_thumbnail
    assert store.thumbnail(eid) == b"JPG" and store.event(eid) == row
    assert store.thumbnail(eid + 1) is None and store.event(eid + 1) is None


def test_the_range_and_the_camera_select_events(tmp_path: Path, catalog_url: str | None) -> None:
    _catalog, store = _store(tmp_path, catalog_url)
    for i, (camera, start) in enumerate([("cam1", 0.0), ("cam1", 100.0), ("cam2", 50.0)]):
        store.begin(i + 1, camera, NOW + start, 0.1, [])
        store.end(i + 1, NOW + start + 10, 0.1, NOW + start, [], "motion_stopped", None)
    assert [e.id for e in store.events("cam1", NOW + 5, NOW + 105)] == [1, 2]
    assert [e.id for e in store.events("cam1", NOW + 11, NOW + 99)] == []
    assert [e.id for e in store.events(None, NOW, NOW + 200)] == [1, 3, 2]  # by start
    assert [e.id for e in store.events("cam1", NOW, NOW + 200, limit=1)] == [1]


def test_ids_go_on_after_a_restart_and_a_repeated_begin_is_harmless(
    tmp_path: Path, catalog_url: str | None
) -> None:
    catalog, store = _store(tmp_path, catalog_url)
    first = store.new_id()
    store.begin(first, "cam1", NOW, 0.1, [])
    store.begin(first, "cam1", NOW, 0.1, [])  # a deferred write that ran twice
    catalog.close()
    _catalog, again = _store(tmp_path, catalog_url)
    after = again.new_id()
    # SQLite counts on; a shared PostgreSQL catalog gives a restarted process a new block.
    assert after == first + 1 if catalog_url is None else after > first
    assert len(again.events("cam1")) == 1


@pytest.mark.integration
def test_nodes_sharing_a_catalog_never_hand_out_the_same_event_id(
    tmp_path: Path, catalog_urls: CatalogUrls
) -> None:
    url = catalog_urls.new("postgresql")
    (_a, one), (_b, two) = _store(tmp_path / "a", url), _store(tmp_path / "b", url)
    ids = [store.new_id() for _ in range(ID_BLOCK + 5) for store in (one, two)]
    assert len(set(ids)) == len(ids)


def test_events_a_crash_left_open_end_when_the_recorder_was_last_alive(
    tmp_path: Path, catalog_url: str | None
) -> None:
    _catalog, store = _store(tmp_path, catalog_url)
    store.begin(1, "cam1", NOW, 0.1, [])
    store.begin(2, "cam1", NOW + 50, 0.1, [])  # began after the last heartbeat
    assert store.close_open(NOW + 20) == 2
    rows = store.events("cam1")
    assert [(r.end_utc, r.end_reason) for r in rows] == [(NOW + 20, "crash"), (NOW + 50, "crash")]


def test_events_go_with_their_footage(tmp_path: Path, catalog_url: str | None) -> None:
    catalog, store = _store(tmp_path, catalog_url)
    catalog.add_segment("cam1", "cam1/d/a.mkv", NOW + 100)
    catalog.close_segment("cam1/d/a.mkv", NOW + 160, 60.0, 100, 900)
    store.begin(1, "cam1", NOW + 10, 0.1, [])  # its footage is gone
    store.end(1, NOW + 20, 0.1, NOW + 10, [], "motion_stopped", b"a")
    store.begin(2, "cam1", NOW + 120, 0.1, [])  # inside the segment left
    store.end(2, NOW + 130, 0.1, NOW + 120, [], "motion_stopped", b"b")
    store.begin(3, "cam2", NOW + 10, 0.1, [])  # another camera
    store.end(3, NOW + 20, 0.1, NOW + 10, [], "motion_stopped", None)
    assert store.delete_without_footage("cam1", NOW + 200) == 1
    assert [e.id for e in store.events()] == [3, 2] and store.thumbnail(1) is None
    # By age: whatever ended before the cutoff, the open ones never.
    store.begin(4, "cam1", NOW + 140, 0.1, [])
    assert store.delete_before("cam1", NOW + 150) == 1
    assert [e.id for e in store.events()] == [3, 4] and sorted(store.cameras()) == ["cam1", "cam2"]


def test_retention_keeps_the_segments_of_events_longer() -> None:
    old = NOW - 5 * DAY_S
    rows = [seg(1, old), seg(2, old + 120), seg(3, old + 240, "cam2")]
    # An event during segment 2 of cam1, and one on cam2 long ago (beyond events retention).
    spans = {"cam1": [(old + 130, old + 140)], "cam2": [(old + 250, old + 260)]}
    plan = plan_retention(rows, NOW, 2, None, 0, (), events_retention_days=10, event_spans=spans)
    assert [(d.segment.id, d.reason) for d in plan.deletes] == [(1, DeleteReason.AGE)]
    plan = plan_retention(rows, NOW, 2, None, 0, (), events_retention_days=4, event_spans=spans)
    assert [d.segment.id for d in plan.deletes] == [1, 2, 3]  # older than 4 days
    # An event touching a segment's end keeps it; one on another camera does not.
    edge = {"cam1": [(old + 60, old + 61)]}
    plan = plan_retention(rows, NOW, 2, None, 0, (), events_retention_days=10, event_spans=edge)
    assert [d.segment.id for d in plan.deletes] == [2, 3]


def test_the_edges_of_events_and_of_their_retention_count() -> None:
    old = NOW - 5 * DAY_S
    rows = [seg(1, old)]
    # An event ending exactly where the segment starts touches it: kept.
    touching = {"cam1": [(old - 10, old)]}
    plan = plan_retention(rows, NOW, 2, None, 0, (), events_retention_days=10, event_spans=touching)
    assert plan.deletes == ()
    # A segment ending exactly at the events' cutoff is still inside their retention.
    at_cutoff = [seg(2, NOW - 4 * DAY_S - 60)]
    spans = {"cam1": [(NOW - 4 * DAY_S - 30, NOW - 4 * DAY_S - 20)]}
    plan = plan_retention(
        at_cutoff, NOW, 2, None, 0, (), events_retention_days=4, event_spans=spans
    )
    assert plan.deletes == ()
