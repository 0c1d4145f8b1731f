"""Catalog rows of a recorder that ran for days, written straight into SQLite (no media files),
or through the catalog's connection into PostgreSQL: for the timeline's and the cluster's
benchmarks and tests. Not for a catalog whose recorder will start: start-up recovery removes
rows whose files do not exist."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from nvr_gstreamer.storage.catalog import CATALOG_NAME, Catalog
from nvr_gstreamer.storage.timeline import GapReason

FRAME_S = 0.04  # the hole between two files of one camera: a frame interval
OUTAGE_REASONS = (
    GapReason.CAMERA_DOWN,
    GapReason.RECORDING_OFF,
    GapReason.DISK_FULL,
    GapReason.STORAGE_UNAVAILABLE,
)


def fill_catalog(
    root: Path,
    cameras: Sequence[str],
    start_utc: float,
    end_utc: float,
    *,
    segment_s: float = 60.0,
    outages_per_day: float = 3.0,
    outage_s: tuple[float, float] = (60.0, 1200.0),
    stopped: Sequence[tuple[float, float]] = (),
    seed: int = 1,
    runs: bool = True,
    still_recording: bool = True,
    url: str | None = None,
) -> int:
    """Segments of ``segment_s`` around the clock from ``start_utc`` to ``end_utc`` for every
    camera (the last one still being written, if ``still_recording``), broken by random
    outages (``outages_per_day`` per camera, lasting ``outage_s``, with a reason of
    :data:`OUTAGE_REASONS` recorded as an interruption) and by the recorder's stops
    (``stopped``: no files, no run; the runs of the recorder around them are written unless
    ``runs`` is false, as for a second call). Returns the number of segment rows written.

    ``url``: the same rows into the PostgreSQL catalog at ``url`` (see :class:`Catalog`), in
    one transaction; None: into the SQLite file in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(root, url)  # the schema
    if url is None:
        catalog.close()
    rnd = random.Random(seed)
    segments: list[tuple[str, str, float, float | None, float, int, int, str]] = []
    interruptions: list[tuple[str, str, float, float]] = []
    day_s = 86_400.0
    for camera in cameras:
        t = start_utc
        n = 0
        while t < end_utc:
            stop = next(((a, b) for a, b in stopped if a <= t < b), None)
            if stop is not None:
                t = stop[1]
                continue
            if rnd.random() < outages_per_day * segment_s / day_s:
                until = min(end_utc, t + rnd.uniform(*outage_s))
                for a, _b in stopped:  # the recorder closes what is open when it stops
                    if t < a < until:
                        until = a
                reason = rnd.choice(OUTAGE_REASONS)
                interruptions.append((camera, reason.value, t, until))
                t = until
                continue
            end = min(t + segment_s, end_utc)
            for a, _b in stopped:  # the recorder stopped: the file ends there
                if t < a < end:
                    end = a
            n += 1
            path = f"{camera}/fill/{camera}_{n:06d}.mkv"
            if end >= end_utc and still_recording:  # being written
                segments.append((camera, path, t, None, 0.0, 0, 0, "recording"))
            else:
                segments.append((camera, path, t, end, end - t, 1_000_000, 1500, "closed"))
            t = end + FRAME_S
    run_rows = []
    cursor = start_utc - 60.0
    for a, b in sorted(stopped):
        run_rows.append((cursor, a))
        cursor = b
    run_rows.append((cursor, end_utc))
    if url is not None:
        try:
            _write(catalog, segments, interruptions, run_rows if runs else [])
        finally:
            catalog.close()
        return len(segments)
    with contextlib.closing(sqlite3.connect(root / CATALOG_NAME, timeout=30)) as db, db:
        db.executemany(
            "INSERT INTO segments (camera, path, start_utc, end_utc, duration_s, size_bytes,"
            " frames, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            segments,
        )
        db.executemany(
            "INSERT INTO interruptions (camera, reason, start_utc, end_utc) VALUES (?, ?, ?, ?)",
            interruptions,
        )
        if runs:
            db.executemany("INSERT INTO runs (start_utc, alive_utc) VALUES (?, ?)", run_rows)
    return len(segments)


def _write(
    catalog: Catalog,
    segments: Sequence[tuple[object, ...]],
    interruptions: Sequence[tuple[object, ...]],
    run_rows: Sequence[tuple[object, ...]],
) -> None:
    """The rows through the catalog's own connection, in its dialect."""
    with catalog.transaction() as db:
        db.executemany(
            "INSERT INTO segments (camera, path, start_utc, end_utc, duration_s, size_bytes,"
            " frames, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            segments,
        )
        db.executemany(
            "INSERT INTO interruptions (camera, reason, start_utc, end_utc) VALUES (?, ?, ?, ?)",
            interruptions,
        )
        if run_rows:
            db.executemany("INSERT INTO runs (start_utc, alive_utc) VALUES (?, ?)", run_rows)
