"""The catalog: one SQLite database (WAL) per storage root, a row per segment.

It lives in the storage root (``catalog.sqlite3``), so it travels with the footage it
describes and never claims files of another volume. Times are UTC epoch seconds. Besides
segments it keeps *interruptions* — spans when a camera was not recorded, and why — from
which :meth:`Catalog.timeline` explains every gap a user sees.

Thread-safe: one connection, kept open and shared under a lock by the loop thread, workers
and HTTP threads. Keeping it open matters: in WAL mode the last connection to close deletes
the ``-wal`` and ``-shm`` files, and a new connection must create them again — which a full
disk refuses. :meth:`Catalog.reset` drops the connection when the volume goes away; the next
call opens the file again (never creating it: a bare mount point gets no fresh catalog).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

CATALOG_NAME = "catalog.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    id          INTEGER PRIMARY KEY,
    camera      TEXT NOT NULL,
    path        TEXT NOT NULL UNIQUE,   -- relative to the storage root
    start_utc   REAL NOT NULL,
    end_utc     REAL,
    duration_s  REAL,
    size_bytes  INTEGER,
    frames      INTEGER,
    status      TEXT NOT NULL           -- recording | closed | recovered
);
CREATE INDEX IF NOT EXISTS segments_by_camera ON segments (camera, start_utc);
CREATE TABLE IF NOT EXISTS interruptions (
    id          INTEGER PRIMARY KEY,
    camera      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    start_utc   REAL NOT NULL,
    end_utc     REAL
);
CREATE INDEX IF NOT EXISTS interruptions_by_camera ON interruptions (camera, start_utc);
"""


class SegmentStatus(Enum):
    RECORDING = "recording"  # being written (or left by a crash, until recovered)
    CLOSED = "closed"  # finalised cleanly, fsynced
    RECOVERED = "recovered"  # left unfinished by a crash, repaired at start-up


class GapReason(Enum):
    CAMERA_DOWN = "camera_down"
    RECORDING_OFF = "recording_off"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    DISK_FULL = "disk_full"
    NVR_STOPPED = "nvr_stopped"  # no record of why: the recorder was not running


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: int
    camera: str
    path: str
    start_utc: float
    end_utc: float | None
    duration_s: float | None
    size_bytes: int | None
    frames: int | None
    status: SegmentStatus


@dataclass(frozen=True, slots=True)
class Gap:
    camera: str
    start_utc: float
    end_utc: float
    reason: GapReason


@dataclass(frozen=True, slots=True)
class Timeline:
    camera: str
    start_utc: float
    end_utc: float
    segments: tuple[SegmentRow, ...]
    gaps: tuple[Gap, ...]


def _row(r: sqlite3.Row) -> SegmentRow:
    return SegmentRow(
        id=r["id"],
        camera=r["camera"],
        path=r["path"],
        start_utc=r["start_utc"],
        end_utc=r["end_utc"],
        duration_s=r["duration_s"],
        size_bytes=r["size_bytes"],
        frames=r["frames"],
        status=SegmentStatus(r["status"]),
    )


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / CATALOG_NAME
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        with self._connect(create=True) as db:
            db.executescript(_SCHEMA)

    def reset(self) -> None:
        """Close the connection (the volume went away); the next call reopens it."""
        with self._lock:
            if self._db is not None:
                with suppress(sqlite3.Error):
                    self._db.close()
                self._db = None

    def close(self) -> None:
        self.reset()

    @contextmanager
    def _connect(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        # Only the constructor may create the file: a storage root that is an empty
        # mount point now (drive gone) must not get a fresh catalog on the wrong disk.
        mode = "rwc" if create else "rw"
        with self._lock:
            if self._db is None:
                db = sqlite3.connect(
                    f"{self.path.as_uri()}?mode={mode}",
                    uri=True,
                    timeout=10,
                    check_same_thread=False,
                )
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                self._db = db
            with self._db:
                yield self._db

    # ---- segments -------------------------------------------------------------------------

    def add_segment(self, camera: str, rel_path: str, start_utc: float) -> int:
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO segments (camera, path, start_utc, status) VALUES (?, ?, ?, ?)",
                (camera, rel_path, start_utc, SegmentStatus.RECORDING.value),
            )
            return int(cur.lastrowid or 0)

    def close_segment(
        self,
        rel_path: str,
        end_utc: float,
        duration_s: float,
        size_bytes: int,
        frames: int | None,
        status: SegmentStatus = SegmentStatus.CLOSED,
        start_utc: float | None = None,
        camera: str | None = None,
    ) -> None:
        """Mark a segment final (inserting it if it was never catalogued: adoption)."""
        with self._connect() as db:
            cur = db.execute(
                "UPDATE segments SET end_utc=?, duration_s=?, size_bytes=?, frames=?, status=?"
                " WHERE path=?",
                (end_utc, duration_s, size_bytes, frames, status.value, rel_path),
            )
            if cur.rowcount == 0:
                if start_utc is None or camera is None:
                    raise KeyError(rel_path)
                db.execute(
                    "INSERT INTO segments (camera, path, start_utc, end_utc, duration_s,"
                    " size_bytes, frames, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (camera, rel_path, start_utc, end_utc, duration_s, size_bytes, frames,
                     status.value),
                )  # fmt: skip

    def remove_segment(self, rel_path: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM segments WHERE path=?", (rel_path,))

    def segment(self, segment_id: int) -> SegmentRow | None:
        with self._connect() as db:
            r = db.execute("SELECT * FROM segments WHERE id=?", (segment_id,)).fetchone()
        return _row(r) if r else None

    def segments(
        self,
        camera: str | None = None,
        start_utc: float | None = None,
        end_utc: float | None = None,
    ) -> list[SegmentRow]:
        """Segments overlapping [start, end), oldest first."""
        sql = "SELECT * FROM segments WHERE 1=1"
        args: list[object] = []
        if camera is not None:
            sql += " AND camera=?"
            args.append(camera)
        if end_utc is not None:
            sql += " AND start_utc < ?"
            args.append(end_utc)
        if start_utc is not None:
            sql += " AND (end_utc IS NULL OR end_utc > ?)"
            args.append(start_utc)
        sql += " ORDER BY start_utc, id"
        with self._connect() as db:
            return [_row(r) for r in db.execute(sql, args)]

    def unfinished(self) -> list[SegmentRow]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM segments WHERE status=? ORDER BY start_utc",
                (SegmentStatus.RECORDING.value,),
            )
            return [_row(r) for r in rows]

    def oldest_closed(self, limit: int) -> list[SegmentRow]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM segments WHERE status != ? ORDER BY start_utc LIMIT ?",
                (SegmentStatus.RECORDING.value, limit),
            )
            return [_row(r) for r in rows]

    def all_paths(self) -> set[str]:
        with self._connect() as db:
            return {r["path"] for r in db.execute("SELECT path FROM segments")}

    # ---- interruptions --------------------------------------------------------------------

    def begin_interruption(self, camera: str, reason: GapReason, start_utc: float) -> None:
        """A camera stopped being recorded for ``reason`` (ends any open interruption)."""
        with self._connect() as db:
            db.execute(
                "UPDATE interruptions SET end_utc=? WHERE camera=? AND end_utc IS NULL",
                (start_utc, camera),
            )
            db.execute(
                "INSERT INTO interruptions (camera, reason, start_utc) VALUES (?, ?, ?)",
                (camera, reason.value, start_utc),
            )

    def end_interruption(self, camera: str, end_utc: float) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE interruptions SET end_utc=? WHERE camera=? AND end_utc IS NULL",
                (end_utc, camera),
            )

    def close_open_interruptions(self, end_utc: float) -> None:
        """At start-up: whatever was open when the recorder stopped ended then."""
        with self._connect() as db:
            db.execute("UPDATE interruptions SET end_utc=? WHERE end_utc IS NULL", (end_utc,))

    # ---- the timeline ---------------------------------------------------------------------

    def timeline(
        self, camera: str, start_utc: float, end_utc: float, min_gap_s: float = 2.0
    ) -> Timeline:
        """Segments in the range and the gaps between them, each with its reason."""
        segs = [s for s in self.segments(camera, start_utc, end_utc)]
        with self._connect() as db:
            rows = db.execute(
                "SELECT reason, start_utc, end_utc FROM interruptions WHERE camera=?"
                " AND start_utc < ? AND (end_utc IS NULL OR end_utc > ?) ORDER BY start_utc",
                (camera, end_utc, start_utc),
            ).fetchall()
        spans = [(GapReason(r["reason"]), r["start_utc"], r["end_utc"] or end_utc) for r in rows]
        gaps: list[Gap] = []
        cursor = start_utc
        for seg in [*segs, None]:
            gap_end = end_utc if seg is None else max(start_utc, seg.start_utc)
            if gap_end - cursor >= min_gap_s:
                gaps.extend(_explain(camera, cursor, gap_end, spans, min_gap_s))
            if seg is not None:
                seg_end = seg.end_utc if seg.end_utc is not None else end_utc
                cursor = max(cursor, min(seg_end, end_utc))
        return Timeline(camera, start_utc, end_utc, tuple(segs), tuple(gaps))


def _explain(
    camera: str,
    start: float,
    end: float,
    spans: list[tuple[GapReason, float, float]],
    min_gap_s: float,
) -> list[Gap]:
    """Split a gap by the interruptions that cover it; uncovered parts: the NVR was stopped."""
    out: list[Gap] = []
    cursor = start
    for reason, s, e in spans:
        s, e = max(s, start), min(e, end)
        if e <= cursor:
            continue
        if s - cursor >= min_gap_s:
            out.append(Gap(camera, cursor, s, GapReason.NVR_STOPPED))
        # A reason is credited from where the previous part ended, so small timing slack
        # between "recording stopped" and "interruption began" stays in one gap.
        out.append(Gap(camera, cursor if s - cursor < min_gap_s else s, e, reason))
        cursor = e
    if end - cursor >= min_gap_s or not out:
        out.append(Gap(camera, cursor, end, GapReason.NVR_STOPPED))
    elif out:
        last = out[-1]
        out[-1] = Gap(camera, last.start_utc, end, last.reason)
    return out
