"""Motion events in the catalog: a row per event, its peak frame as a small JPEG.

The events live in the catalog's database (same file, same connection, same lock: see
:meth:`Catalog.transaction`), so they travel with the footage they point at, and retention
removes an event together with the footage around it. Thumbnails are BLOBs in a table of their
own (a few kB each; SQLite reads such blobs faster than separate files, and one transaction
keeps event and picture together).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from nvr_gstreamer.storage.catalog import Catalog
from nvr_gstreamer.storage.database import Row

ID_BLOCK = 1000  # ids a process takes at once from a shared (PostgreSQL) catalog

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    camera: str
    start_utc: float
    end_utc: float | None
    score: float
    peak_utc: float
    boxes: tuple[Box, ...]
    end_reason: str | None
    has_thumbnail: bool


class EventStore:
    """Ids are handed out here (:meth:`new_id`), not by the database: an event is announced
    (MQTT, the web app) at once, while its row may wait for a volume that is away. One
    recorder owns an SQLite catalog, so counting on from the largest id keeps them unique; on
    PostgreSQL, which several nodes share, each process takes blocks of ids from a sequence
    (a block at start, the next when it is used up)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._ids = threading.Lock()
        self._shared = catalog.backend == "postgresql"
        self._block_end = 0
        if self._shared:
            self._last_id = self._take_block()
            return
        with catalog.transaction() as db:
            row = db.one("SELECT COALESCE(MAX(id), 0) AS last FROM events")
            self._last_id = int(row["last"]) if row else 0

    def _take_block(self) -> int:
        """The id before a fresh block of ``ID_BLOCK`` ids of this process's own."""
        with self._catalog.transaction() as db:
            row = db.one("SELECT nextval('event_id_blocks') AS b")
        start = (int(row["b"]) if row else 0) * ID_BLOCK
        self._block_end = start + ID_BLOCK
        return start

    def new_id(self) -> int:
        with self._ids:
            if self._shared and self._last_id + 1 >= self._block_end:
                self._last_id = self._take_block()
            self._last_id += 1
            return self._last_id

    def begin(
        self, event_id: int, camera: str, start_utc: float, score: float, boxes: Sequence[Box]
    ) -> None:
        with self._catalog.transaction() as db:
            db.execute(
                "INSERT INTO events (id, camera, start_utc, score, peak_utc, boxes)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (event_id, camera, start_utc, score, start_utc, _boxes_json(boxes)),
            )

    def end(
        self,
        event_id: int,
        end_utc: float,
        score: float,
        peak_utc: float,
        boxes: Sequence[Box],
        reason: str,
        thumbnail: bytes | None,
    ) -> None:
        with self._catalog.transaction() as db:
            db.execute(
                "UPDATE events SET end_utc=?, score=?, peak_utc=?, boxes=?, end_reason=?"
                " WHERE id=?",
                (end_utc, score, peak_utc, _boxes_json(boxes), reason, event_id),
            )
            if thumbnail:
                db.execute(
                    "INSERT INTO event_thumbnails (event_id, jpeg) VALUES (?, ?)"
                    " ON CONFLICT (event_id) DO UPDATE SET jpeg = excluded.jpeg",
                    (event_id, thumbnail),
                )

    def close_open(self, end_utc: float) -> int:
        """Events left open by a crash end when the recorder was last known alive."""
        with self._catalog.transaction() as db:
            cur = db.execute(
                "UPDATE events SET end_utc=GREATEST(start_utc, ?), end_reason='crash'"
                " WHERE end_utc IS NULL",
                (end_utc,),
            )
            return cur.rowcount

    def events(
        self,
        camera: str | None = None,
        start_utc: float | None = None,
        end_utc: float | None = None,
        limit: int = 1000,
    ) -> list[EventRow]:
        """Events overlapping [start, end), oldest first (the first ``limit``)."""
        sql = (
            "SELECT e.*, t.event_id IS NOT NULL AS thumb FROM events e"
            " LEFT JOIN event_thumbnails t ON t.event_id = e.id WHERE 1=1"
        )
        args: list[object] = []
        if camera is not None:
            sql += " AND e.camera=?"
            args.append(camera)
        if end_utc is not None:
            sql += " AND e.start_utc < ?"
            args.append(end_utc)
        if start_utc is not None:
            sql += " AND (e.end_utc IS NULL OR e.end_utc >= ?)"
            args.append(start_utc)
        sql += " ORDER BY e.start_utc, e.id LIMIT ?"
        args.append(limit)
        with self._catalog.transaction() as db:
            return [_event(r) for r in db.execute(sql, args)]

    def event(self, event_id: int) -> EventRow | None:
        with self._catalog.transaction() as db:
            r = db.execute(
                "SELECT e.*, EXISTS (SELECT 1 FROM event_thumbnails WHERE event_id = e.id)"
                " AS thumb FROM events e WHERE id=?",
                (event_id,),
            ).fetchone()
        return _event(r) if r else None

    def thumbnail(self, event_id: int) -> bytes | None:
        with self._catalog.transaction() as db:
            r = db.execute(
                "SELECT jpeg FROM event_thumbnails WHERE event_id=?", (event_id,)
            ).fetchone()
        return bytes(r["jpeg"]) if r else None

    def spans(self, camera: str, start_utc: float, end_utc: float) -> list[tuple[float, float]]:
        """(start, end) of the camera's ended events overlapping the range (retention)."""
        with self._catalog.transaction() as db:
            rows = db.execute(
                "SELECT start_utc, end_utc FROM events WHERE camera=? AND start_utc < ?"
                " AND end_utc IS NOT NULL AND end_utc >= ? ORDER BY start_utc",
                (camera, end_utc, start_utc),
            ).fetchall()
        return [(r["start_utc"], r["end_utc"]) for r in rows]

    def cameras(self) -> list[str]:
        with self._catalog.transaction() as db:
            return [r["camera"] for r in db.execute("SELECT DISTINCT camera FROM events")]

    def delete_without_footage(self, camera: str, before_utc: float) -> int:
        """Remove the camera's events that ended before ``before_utc`` and that no segment
        overlaps any more (retention deleted their footage)."""
        orphans = (
            "SELECT e.id FROM events e WHERE e.camera=? AND e.end_utc IS NOT NULL"
            " AND e.end_utc < ? AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.camera ="
            " e.camera AND s.start_utc < e.end_utc AND (s.end_utc IS NULL OR s.end_utc >"
            " e.start_utc))"
        )
        with self._catalog.transaction() as db:
            ids = [r["id"] for r in db.execute(orphans, (camera, before_utc))]
            db.executemany("DELETE FROM event_thumbnails WHERE event_id=?", [(i,) for i in ids])
            db.executemany("DELETE FROM events WHERE id=?", [(i,) for i in ids])
        return len(ids)

    def delete_before(self, camera: str, before_utc: float) -> int:
        """Remove the camera's events that ended before ``before_utc`` (their footage is
        gone), thumbnails too; the number removed."""
        with self._catalog.transaction() as db:
            db.execute(
                "DELETE FROM event_thumbnails WHERE event_id IN (SELECT id FROM events"
                " WHERE camera=? AND end_utc IS NOT NULL AND end_utc < ?)",
                (camera, before_utc),
            )
            cur = db.execute(
                "DELETE FROM events WHERE camera=? AND end_utc IS NOT NULL AND end_utc < ?",
                (camera, before_utc),
            )
            return cur.rowcount


def _boxes_json(boxes: Sequence[Box]) -> str:
    return json.dumps([[round(v, 4) for v in b] for b in boxes])


def _event(row: Row) -> EventRow:
    boxes = tuple((b[0], b[1], b[2], b[3]) for b in json.loads(row["boxes"]))
    return EventRow(
        id=row["id"],
        camera=row["camera"],
        start_utc=row["start_utc"],
        end_utc=row["end_utc"],
        score=row["score"],
        peak_utc=row["peak_utc"],
        boxes=boxes,
        end_reason=row["end_reason"],
        has_thumbnail=bool(row["thumb"]),
    )
