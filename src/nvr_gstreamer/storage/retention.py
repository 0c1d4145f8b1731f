"""Retention: the planner decides (pure), the janitor deletes.

By age (``retention_days``; 0 = no age limit) and by free space (``min_free_percent``),
oldest first. Segments of motion events may be kept longer by age
(``events_retention_days``); free space beats that too. A segment being written is never a
candidate. The catalog row goes before the file, so a crash in between leaves a file the
start-up scan adopts again — never a row that points at nothing the user could try to play.
The one exception is a disk so full that the catalog cannot be written: then the file goes
first (freeing the space is what unblocks the catalog) and its row is removed as soon as the
catalog can be written again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from nvr_gstreamer.storage.catalog import Catalog, SegmentRow, SegmentStatus
from nvr_gstreamer.storage.database import STORAGE_ERRORS
from nvr_gstreamer.storage.volume import VolumeUsage

logger = logging.getLogger(__name__)

DAY_S = 86400.0


class DeleteReason(Enum):
    AGE = "age"
    SPACE = "space"


@dataclass(frozen=True, slots=True)
class PlannedDelete:
    segment: SegmentRow
    reason: DeleteReason


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    deletes: tuple[PlannedDelete, ...]
    bytes_freed: int
    short_of_space: bool  # even after these deletions, free space stays under the minimum


def plan_retention(
    segments: Sequence[SegmentRow],
    now_utc: float,
    retention_days: int,
    usage: VolumeUsage | None,
    min_free_percent: float,
    protected: Iterable[str] = (),
    events_retention_days: int = 0,
    event_spans: Mapping[str, Sequence[tuple[float, float]]] | None = None,
) -> RetentionPlan:
    """Which segments to delete, oldest first. ``segments`` may come in any order.
    ``event_spans``: per camera, the (start, end) of its motion events; a segment that
    overlaps one is kept by age until ``events_retention_days``."""
    spans = event_spans or {}
    events_cutoff = now_utc - max(events_retention_days, retention_days) * DAY_S
    keep = set(protected)
    candidates = sorted(
        (s for s in segments if s.status is not SegmentStatus.RECORDING and s.path not in keep),
        key=lambda s: (s.start_utc, s.id),
    )
    deletes: list[PlannedDelete] = []
    freed = 0
    chosen: set[int] = set()
    if retention_days > 0:
        cutoff = now_utc - retention_days * DAY_S
        for s in candidates:
            end = s.end_utc if s.end_utc is not None else s.start_utc
            kept = end >= events_cutoff and _overlaps(s.start_utc, end, spans.get(s.camera, ()))
            if end < cutoff and not kept:
                deletes.append(PlannedDelete(s, DeleteReason.AGE))
                chosen.add(s.id)
                freed += s.size_bytes or 0
    short = False
    if usage is not None and usage.total_bytes > 0 and min_free_percent > 0:
        needed = int(usage.total_bytes * min_free_percent / 100.0) - (usage.free_bytes + freed)
        for s in candidates:
            if needed <= 0:
                break
            if s.id in chosen or s.object_key is not None:
                continue  # (an uploaded segment takes no room on this disk)
            deletes.append(PlannedDelete(s, DeleteReason.SPACE))
            chosen.add(s.id)
            size = s.size_bytes or 0
            freed += size
            needed -= size
        short = needed > 0
    return RetentionPlan(tuple(deletes), freed, short)


def _overlaps(start: float, end: float, spans: Sequence[tuple[float, float]]) -> bool:
    return any(a <= end and b >= start for a, b in spans)


class Janitor:
    """Carries out a plan: catalog row first, then the file, then empty day folders."""

    def __init__(
        self,
        catalog: Catalog,
        on_deleted: Callable[[PlannedDelete], None],
        defer_row_removal: Callable[[str], None],
        delete_object: Callable[[str], None] | None = None,
    ) -> None:
        """``delete_object(key)`` removes an uploaded segment's object (storage.remote)."""
        self._catalog = catalog
        self._on_deleted = on_deleted
        self._defer_row_removal = defer_row_removal
        self._delete_object = delete_object

    def execute(self, plan: RetentionPlan) -> int:
        done = 0
        for item in plan.deletes:
            path = self._catalog.root / item.segment.path
            key = item.segment.object_key
            if key is not None:
                if self._remove_object(item.segment.path, key):
                    done += 1
                    self._on_deleted(item)
                continue
            try:
                self._catalog.remove_segment(item.segment.path)
            except STORAGE_ERRORS as exc:
                # A disk too full for the catalog's own write: free the space first, the
                # row follows when it can (start-up recovery prunes it after a crash).
                logger.warning("catalog busy or full (%s): deleting %s first", exc, path.name)
                self._defer_row_removal(item.segment.path)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("could not delete %s: %s", path, exc.strerror)
                continue
            self._remove_empty_parents(path.parent)
            done += 1
            self._on_deleted(item)
        return done

    def _remove_object(self, rel_path: str, key: str) -> bool:
        """The row first, then the object: a failure in between leaves an object no row
        points at, never a row without its footage."""
        try:
            self._catalog.remove_segment(rel_path)
        except STORAGE_ERRORS as exc:
            logger.warning("catalog not writable (%s): %s kept for now", exc, rel_path)
            return False
        if self._delete_object is not None:
            try:
                self._delete_object(key)
            except Exception as exc:  # the S3 client's errors; the row is gone either way
                logger.warning("object %s not deleted (%s): left in the bucket", key, exc)
        return True

    def _remove_empty_parents(self, folder: Path) -> None:
        root = self._catalog.root
        while folder != root and root in folder.parents:
            try:
                os.rmdir(folder)
            except OSError:
                return
            folder = folder.parent
