"""The catalog: a row per segment, in one SQLite database (WAL) per storage root, or in a
PostgreSQL database shared by recorder nodes (``catalog.url``; see :mod:`.database`).

The SQLite file lives in the storage root (``catalog.sqlite3``), so it travels with the footage
it describes and never claims files of another volume. Times are UTC epoch seconds. Besides
segments it keeps *interruptions* — spans when a camera was not recorded, and why — from
which :meth:`Catalog.timeline` explains every gap a user sees. The schema and its migrations
are in :mod:`.schema`.

Thread-safe: one connection, kept open and shared under a lock by the storage worker (every
write) and readers (HTTP threads, the desktop's day reader; never the GStreamer loop or the
GUI thread). Keeping it open matters: in WAL mode the last connection to close deletes
the ``-wal`` and ``-shm`` files, and a new connection must create them again — which a full
disk refuses. :meth:`Catalog.reset` drops the connection when the volume goes away; the next
call opens the file again (never creating it: a bare mount point gets no fresh catalog).

Longer than ~300 lines: every query of one database belongs together.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from itertools import chain
from pathlib import Path

from nvr_gstreamer.storage.database import Connector, Db, Row
from nvr_gstreamer.storage.schema import LONG_SEGMENT_S, migrate
from nvr_gstreamer.storage.timeline import (
    Gap,
    GapReason,
    Interruption,
    Span,
    build_gaps,
    sorted_footage,
)

__all__ = [
    "CATALOG_NAME",
    "Catalog",
    "FootageTimeline",
    "Gap",
    "GapReason",
    "SegmentRow",
    "SegmentStatus",
    "StaleEpoch",
    "Writer",
]

logger = logging.getLogger(__name__)

CATALOG_NAME = "catalog.sqlite3"

# footage_timeline's queries: the rows that start in [lo, end) and end after ``reach``, from
# the covering index; the long (or open) ones that start before lo and end after ``reach``.
_SPANS = (
    "SELECT start_utc, end_utc FROM segments WHERE camera=? AND start_utc >= ? AND start_utc < ?"
    " AND (end_utc IS NULL OR end_utc > ?) ORDER BY start_utc"
)
_LONG_SPANS = (
    "SELECT start_utc, end_utc FROM segments INDEXED BY segments_long WHERE camera=?"
    f" AND (end_utc IS NULL OR end_utc - start_utc > {LONG_SEGMENT_S}) AND start_utc < ?"
    " AND (end_utc IS NULL OR end_utc > ?)"
)


class StaleEpoch(Exception):
    """A write for a camera under a lease epoch that is no longer the camera's: another node
    records it now (cluster mode). Refused, never retried."""


@dataclass(frozen=True, slots=True)
class Writer:
    """Who writes for a camera in cluster mode: a node, under the epoch of its lease. Every
    write it makes is checked against the camera's lease in the same transaction."""

    node: str
    epoch: int


def _fence(db: Db, camera: str, writer: Writer | None) -> None:
    if writer is None:
        return
    # FOR SHARE: a claim (which bumps the epoch) waits until this write is committed.
    row = db.one(
        "SELECT epoch FROM camera_leases WHERE camera=? AND owner=? AND epoch=? FOR SHARE",
        (camera, writer.node, writer.epoch),
    )
    if row is None:
        raise StaleEpoch(
            f"{camera}: epoch {writer.epoch} of node {writer.node} is no longer the camera's"
        )


class SegmentStatus(Enum):
    RECORDING = "recording"  # being written (or left by a crash, until recovered)
    CLOSED = "closed"  # finalised cleanly, fsynced
    RECOVERED = "recovered"  # left unfinished by a crash, repaired at start-up


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
    object_key: str | None = None  # in object storage (storage.remote), not in the root
    node: str | None = None  # cluster mode: the node that recorded it, under this epoch
    epoch: int | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    camera: str
    start_utc: float
    end_utc: float
    segments: tuple[SegmentRow, ...]
    gaps: tuple[Gap, ...]
    footage: tuple[tuple[float, float], ...] = ()  # merged footage; with gaps a partition


@dataclass(frozen=True, slots=True)
class FootageTimeline:
    """A :class:`Timeline` with the number of segments instead of the segments: what a view
    of many cameras over days draws."""

    camera: str
    start_utc: float
    end_utc: float
    segment_count: int
    footage: tuple[Span, ...]
    gaps: tuple[Gap, ...]


def _row(r: Row) -> SegmentRow:
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
        object_key=r["object_key"],
        node=r["node"],
        epoch=r["epoch"],
    )


class Catalog:
    def __init__(self, root: Path, url: str | None = None, node: str | None = None) -> None:
        """The catalog of the storage root ``root``: its SQLite file, or the PostgreSQL
        database at ``url`` (see :mod:`.database`). ``node``: this recorder's id in a cluster,
        whose catalog holds every node's rows; what is about this recorder's own files and
        runs (recovery, retention, runs) is then only this node's."""
        self.root = root
        self.node = node
        self._db = Connector(root / CATALOG_NAME, url)
        with self._db.transaction(create=True) as db:
            before, after = migrate(db)
        if before != after:
            logger.info("catalog %s: schema version %d -> %d", self._db.where, before, after)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect.value

    @property
    def where(self) -> str:
        """The catalog's file, or its database server without the password (for logs)."""
        return self._db.where

    def reset(self) -> None:
        """Close the connection (the volume or the server went away); the next call reopens
        it (never creating an SQLite file: see :class:`.database.Connector`)."""
        self._db.reset()

    def close(self) -> None:
        self.reset()

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        """The shared connection, in a transaction: for the catalog's companion tables
        (:mod:`.event_store`), which keep their own queries."""
        with self._db.transaction() as db:
            yield db

    # ---- segments -------------------------------------------------------------------------

    def add_segment(
        self, camera: str, rel_path: str, start_utc: float, writer: Writer | None = None
    ) -> int:
        """A file begun. Idempotent: a write kept while the database was away may be
        replayed after its first try was committed after all (the connection broke at the
        commit, or a later write of the same step failed)."""
        with self._db.transaction() as db:
            _fence(db, camera, writer)
            return db.insert(
                "INSERT INTO segments (camera, path, start_utc, status, node, epoch)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET path=excluded.path",
                (camera, rel_path, start_utc, SegmentStatus.RECORDING.value,
                 writer and writer.node, writer and writer.epoch),
            )  # fmt: skip

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
        writer: Writer | None = None,
    ) -> None:
        """Mark a segment final (inserting it if it was never catalogued: adoption). With a
        ``writer`` (cluster mode) only while its epoch is the camera's, and only a row it
        wrote under that epoch."""
        with self._db.transaction() as db:
            sql = (
                "UPDATE segments SET end_utc=?, duration_s=?, size_bytes=?, frames=?, status=?"
                " WHERE path=?"
            )
            args: tuple[object, ...] = (end_utc, duration_s, size_bytes, frames, status.value,
                                        rel_path)  # fmt: skip
            if writer is not None:
                if camera is None:
                    raise ValueError("a fenced write names its camera")
                _fence(db, camera, writer)
                sql += " AND epoch=?"
                args = (*args, writer.epoch)
            cur = db.execute(sql, args)
            if cur.rowcount == 0:
                if start_utc is None or camera is None:
                    raise KeyError(rel_path)
                db.execute(
                    "INSERT INTO segments (camera, path, start_utc, end_utc, duration_s,"
                    " size_bytes, frames, status, node, epoch)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (camera, rel_path, start_utc, end_utc, duration_s, size_bytes, frames,
                     status.value, writer and writer.node, writer and writer.epoch),
                )  # fmt: skip

    def end_lost_segments(
        self, camera: str, node: str, end_utc: float, writer: Writer | None = None
    ) -> int:
        """A lost node's open segments of ``camera`` end at ``end_utc`` (its last renewal):
        the claiming node cannot read the files; the lost node repairs them if it returns."""
        with self._db.transaction() as db:
            _fence(db, camera, writer)
            cur = db.execute(
                "UPDATE segments SET end_utc=GREATEST(start_utc, ?),"
                " duration_s=GREATEST(start_utc, ?) - start_utc, status=?"
                " WHERE camera=? AND node=? AND status=?",
                (end_utc, end_utc, SegmentStatus.RECOVERED.value, camera, node,
                 SegmentStatus.RECORDING.value),
            )  # fmt: skip
            return cur.rowcount

    def set_object(self, rel_path: str, key: str) -> bool:
        """The segment is in object storage now, under ``key`` (verified); False when its row
        is gone (deleted, or never catalogued: a refused write) or not this node's."""
        sql, args = self._mine(
            "UPDATE segments SET object_key=? WHERE path=? AND status<>?",
            key, rel_path, SegmentStatus.RECORDING,
        )  # fmt: skip
        with self._db.transaction() as db:
            return db.execute(sql, args).rowcount > 0

    def not_uploaded(self) -> list[SegmentRow]:
        """This recorder's final segments still only on its disk, oldest first."""
        sql, args = self._mine(
            "SELECT * FROM segments WHERE object_key IS NULL AND status<>?",
            SegmentStatus.RECORDING,
        )
        with self._db.transaction() as db:
            return [_row(r) for r in db.execute(sql + " ORDER BY start_utc, id", args)]

    def remove_segment(self, rel_path: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM segments WHERE path=?", (rel_path,))

    def segment(self, segment_id: int) -> SegmentRow | None:
        with self._db.transaction() as db:
            r = db.execute("SELECT * FROM segments WHERE id=?", (segment_id,)).fetchone()
        return _row(r) if r else None

    def segments(
        self,
        camera: str | None = None,
        start_utc: float | None = None,
        end_utc: float | None = None,
        limit: int | None = None,
        mine: bool = False,
    ) -> list[SegmentRow]:
        """Segments overlapping [start, end), oldest first (the first ``limit`` of them);
        ``mine``: only this node's (the files on this recorder's disk)."""
        sql = "SELECT * FROM segments WHERE 1=1"
        args: list[object] = []
        if mine and self.node is not None:
            sql += " AND node=?"
            args.append(self.node)
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
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._db.transaction() as db:
            return [_row(r) for r in db.execute(sql, args)]

    def unfinished(self) -> list[SegmentRow]:
        """This recorder's segments left open (by a crash)."""
        sql, args = self._mine("SELECT * FROM segments WHERE status=?", SegmentStatus.RECORDING)
        with self._db.transaction() as db:
            return [_row(r) for r in db.execute(sql + " ORDER BY start_utc", args)]

    def _mine(self, sql: str, *args: object) -> tuple[str, list[object]]:
        """``sql`` (ending in a WHERE clause) for this node's rows only, in a cluster."""
        values = [a.value if isinstance(a, Enum) else a for a in args]
        if self.node is None:
            return sql, values
        return sql + " AND node=?", [*values, self.node]

    # ---- interruptions --------------------------------------------------------------------

    def begin_interruption(
        self, camera: str, reason: GapReason, start_utc: float, writer: Writer | None = None
    ) -> None:
        """A camera stopped being recorded for ``reason`` (ends any open interruption of
        another reason). One outage is one interruption, however many reconnect attempts
        report it: an open interruption of the same reason simply goes on."""
        with self._db.transaction() as db:
            _fence(db, camera, writer)
            open_ = db.execute(
                "SELECT id, reason, start_utc FROM interruptions WHERE camera=? AND end_utc IS"
                " NULL ORDER BY start_utc DESC, id DESC",
                (camera,),
            ).fetchall()
            if open_ and open_[0]["reason"] == reason.value:
                return
            # Never end an open one before it began (a begin dated back to the last frame).
            for r in open_:
                db.execute(
                    "UPDATE interruptions SET end_utc=? WHERE id=?",
                    (max(start_utc, r["start_utc"]), r["id"]),
                )
            if open_:
                start_utc = max(start_utc, max(r["start_utc"] for r in open_))
            db.execute(
                "INSERT INTO interruptions (camera, reason, start_utc) VALUES (?, ?, ?)",
                (camera, reason.value, start_utc),
            )

    def end_interruption(
        self,
        camera: str,
        end_utc: float,
        file_start: bool = False,
        writer: Writer | None = None,
    ) -> None:
        """The camera is recorded again from ``end_utc``. For a file that starts then
        (``file_start``), only an interruption begun by then ends: splitmuxsink reports a file
        a GOP after its first frame, and recording switched off in between began after it."""
        sql = "UPDATE interruptions SET end_utc=GREATEST(start_utc, ?) WHERE camera=?"
        sql += " AND end_utc IS NULL"
        args: tuple[object, ...] = (end_utc, camera)
        if file_start:
            sql += " AND start_utc <= ?"
            args = (*args, end_utc)
        with self._db.transaction() as db:
            _fence(db, camera, writer)
            db.execute(sql, args)

    def close_open_interruptions(self, end_utc: float) -> None:
        """At start-up: whatever was open when the recorder stopped ended then. (Not in a
        cluster: the node that claims a camera ends what its last recorder left open.)"""
        if self.node is not None:
            return
        with self._db.transaction() as db:
            db.execute(
                "UPDATE interruptions SET end_utc=GREATEST(start_utc, ?) WHERE end_utc IS NULL",
                (end_utc,),
            )

    # ---- runs of the recorder -------------------------------------------------------------

    def begin_run(self, start_utc: float) -> int:
        with self._db.transaction() as db:
            return db.insert(
                "INSERT INTO runs (start_utc, alive_utc, node) VALUES (?, ?, ?)",
                (start_utc, start_utc, self.node),
            )

    def run_alive(self, run_id: int, alive_utc: float) -> None:
        """The recorder of ``run_id`` was running at ``alive_utc`` (a heartbeat, or its end)."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE runs SET alive_utc=GREATEST(alive_utc, ?) WHERE id=?", (alive_utc, run_id)
            )

    def last_run_alive_at(self, alive_utc: float) -> None:
        """Start-up after a crash: the last run lasted at least until ``alive_utc`` (its last
        written frame may be later than its last heartbeat)."""
        last, args = self._mine("SELECT MAX(id) FROM runs WHERE 1=1")
        with self._db.transaction() as db:
            db.execute(
                "UPDATE runs SET alive_utc=GREATEST(alive_utc, ?)"
                f" WHERE id=({last}) AND start_utc <= ?",
                (alive_utc, *args, alive_utc),
            )

    def last_alive_utc(self) -> float | None:
        """When this recorder was last known to run."""
        sql, args = self._mine("SELECT MAX(alive_utc) AS t FROM runs WHERE 1=1")
        with self._db.transaction() as db:
            r = db.execute(sql, args).fetchone()
        return float(r["t"]) if r and r["t"] is not None else None

    # ---- the timeline ---------------------------------------------------------------------

    def timeline(
        self,
        camera: str,
        start_utc: float,
        end_utc: float,
        now_utc: float,
        min_gap_s: float = 2.0,
        current_run: int | None = None,
    ) -> Timeline:
        """Segments in the range, and footage and gaps that partition it up to ``now_utc``
        (see :mod:`nvr_gstreamer.storage.timeline` for the guarantees). ``current_run`` is
        the run of the asking process: it lasts until now, whatever its last heartbeat."""
        around = self.segments(camera, start_utc - min_gap_s, end_utc)
        interruptions, runs = self._gap_facts(camera, start_utc, end_utc, now_utc, current_run)
        footage, gaps = build_gaps(
            camera,
            start_utc,
            end_utc,
            [(s.start_utc, s.end_utc) for s in around],
            interruptions,
            runs,
            now_utc,
            min_gap_s,
        )
        segs = tuple(
            s for s in around if s.start_utc < end_utc and (s.end_utc or now_utc) > start_utc
        )
        return Timeline(camera, start_utc, end_utc, segs, tuple(gaps), tuple(footage))

    def footage_timeline(
        self,
        camera: str,
        start_utc: float,
        end_utc: float,
        now_utc: float,
        min_gap_s: float = 2.0,
        current_run: int | None = None,
    ) -> FootageTimeline:
        """What :meth:`timeline` says of the range, with the number of its segments instead of
        the segments. For ranges of days: the footage is merged as the covering index yields
        the rows (a week of 60 s files is 10,080 of them), and only rows that start at most two
        hours before the range are read, plus the long and the open ones (``segments_long``)."""
        (one,) = self.footage_timelines(
            [camera], start_utc, end_utc, now_utc, min_gap_s, current_run
        )
        return one

    def footage_timelines(
        self,
        cameras: Sequence[str],
        start_utc: float,
        end_utc: float,
        now_utc: float,
        min_gap_s: float = 2.0,
        current_run: int | None = None,
    ) -> list[FootageTimeline]:
        """:meth:`footage_timeline` of each of ``cameras``, in their order, read in one
        transaction: the recorder's runs and all the cameras' interruptions by one query each
        (on PostgreSQL every statement is a round trip; 16 cameras took 64 and 32 transactions)."""
        reach = start_utc - min_gap_s  # a file ending after this joins the range's footage
        lo = reach - LONG_SEGMENT_S - 1.0  # a row that starts earlier and ends after reach is long
        merged: dict[str, tuple[list[Span], int]] = {}
        with self._db.transaction() as db:
            for camera in dict.fromkeys(cameras):
                long_rows = list(db.tuples(_LONG_SPANS, (camera, lo, reach)))
                rows = db.tuples(_SPANS, (camera, lo, end_utc, reach))
                merged[camera] = sorted_footage(
                    chain(sorted(long_rows, key=lambda r: r[0]), rows),  # all in order of start
                    now_utc,
                    min_gap_s,
                    start_utc,
                )
            interruptions = _interruptions(db, list(merged), start_utc, end_utc)
            runs = _runs(db, end_utc, now_utc, current_run)
        out = []
        for camera in cameras:
            spans, count = merged[camera]
            # Merged spans are their own footage: build_gaps merges them again to the same.
            footage, gaps = build_gaps(
                camera,
                start_utc,
                end_utc,
                spans,
                interruptions.get(camera, []),
                runs,
                now_utc,
                min_gap_s,
            )
            out.append(
                FootageTimeline(camera, start_utc, end_utc, count, tuple(footage), tuple(gaps))
            )
        return out

    def _gap_facts(
        self,
        camera: str,
        start_utc: float,
        end_utc: float,
        now_utc: float,
        current_run: int | None,
    ) -> tuple[list[Interruption], list[Span]]:
        """The interruptions of the camera and the runs of the recorder in the range."""
        with self._db.transaction() as db:
            interruptions = _interruptions(db, [camera], start_utc, end_utc)
            return interruptions.get(camera, []), _runs(db, end_utc, now_utc, current_run)


def _interruptions(
    db: Db, cameras: list[str], start_utc: float, end_utc: float
) -> dict[str, list[Interruption]]:
    """The interruptions of ``cameras`` that overlap the range, by camera, in order of start."""
    if not cameras:
        return {}
    marks = ", ".join("?" * len(cameras))
    rows = db.execute(
        "SELECT camera, reason, start_utc, end_utc FROM interruptions"
        f" WHERE camera IN ({marks}) AND start_utc < ? AND (end_utc IS NULL OR end_utc > ?)"
        # Ties in the order they were written: PostgreSQL gives equal keys in any order, and
        # the reason a gap gets may depend on which of two equal interruptions comes first.
        " ORDER BY camera, start_utc, id",
        (*cameras, end_utc, start_utc),
    ).fetchall()
    out: dict[str, list[Interruption]] = {}
    for r in rows:
        out.setdefault(r["camera"], []).append(
            Interruption(GapReason(r["reason"]), r["start_utc"], r["end_utc"])
        )
    return out


def _runs(db: Db, end_utc: float, now_utc: float, current_run: int | None) -> list[Span]:
    """The recorder's runs that began before ``end_utc``; the asking one lasts until now."""
    rows = db.execute(
        "SELECT start_utc, CASE WHEN id=? THEN GREATEST(alive_utc, ?) ELSE alive_utc END"
        " AS alive_utc FROM runs WHERE start_utc < ?",
        (current_run, now_utc, end_utc),
    ).fetchall()
    return [(r["start_utc"], r["alive_utc"]) for r in rows]
