"""Start-up recovery: make the catalog and the files agree, and every file playable.

* Rows still marked "recording" were being written when the recorder died (``kill -9``,
  power loss): their files are repaired by a copy-remux (duration and index restored, every
  complete frame kept) and catalogued as "recovered"; a row whose file is gone is removed.
* Segment files no row knows about are adopted (repaired first if they lack a duration).
* Rows whose files are gone are removed.
* Interruptions left open, and the last run of the recorder, end at the last moment the
  recorder is known to have been alive (its last heartbeat or its last written frame).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nvr_gstreamer.storage.catalog import Catalog, SegmentStatus
from nvr_gstreamer.storage.layout import SEGMENT_SUFFIX, is_segment_path, parse_segment_name
from nvr_gstreamer.storage.volume import fsync_file_and_dir

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    repaired: int
    adopted: int
    removed_rows: int
    unreadable: int


@dataclass(frozen=True, slots=True)
class FileFacts:
    frames: int
    duration_s: float


Inspector = Callable[[Path], FileFacts]


def recover(
    catalog: Catalog, repair: Inspector, inspect: Inspector, now_utc: float
) -> RecoveryReport:
    """``repair`` remuxes a file in place; ``inspect`` only reads it (both return facts)."""
    root = catalog.root
    repaired = adopted = removed = unreadable = 0
    known = {row.path: row for row in catalog.segments(mine=True)}
    latest_end = max((r.end_utc or r.start_utc for r in known.values()), default=0.0)

    for row in catalog.unfinished():
        path = root / row.path
        if not path.exists():
            catalog.remove_segment(row.path)
            removed += 1
            continue
        facts = repair(path)
        if facts.frames == 0:
            logger.warning("segment %s holds no readable frame; removed", row.path)
            catalog.remove_segment(row.path)
            path.unlink(missing_ok=True)
            unreadable += 1
            continue
        fsync_file_and_dir(path)
        catalog.close_segment(
            row.path,
            end_utc=row.start_utc + facts.duration_s,
            duration_s=facts.duration_s,
            size_bytes=path.stat().st_size,
            frames=facts.frames,
            status=SegmentStatus.RECOVERED,
        )
        latest_end = max(latest_end, row.start_utc + facts.duration_s)
        repaired += 1
        logger.info("recovered %s: %d frames, %.1f s", row.path, facts.frames, facts.duration_s)

    for row in known.values():
        if row.object_key is not None:
            continue  # uploaded to object storage: its local file is gone on purpose
        if row.status is not SegmentStatus.RECORDING and not (root / row.path).exists():
            catalog.remove_segment(row.path)
            removed += 1

    for path in sorted(root.glob(f"*/*/*{SEGMENT_SUFFIX}")):
        rel = path.relative_to(root).as_posix()
        if rel in known or not is_segment_path(root, path):
            continue
        if catalog.node is not None:
            # In a cluster a file the catalog does not know may be one whose rows were
            # refused (written after its camera moved on): never adopted.
            logger.warning("found %s, not in the catalog; left alone (cluster mode)", rel)
            continue
        parsed = parse_segment_name(path.name)
        if parsed is None:
            continue
        camera, local_start = parsed
        start_utc = local_start.astimezone().timestamp()
        facts = inspect(path)
        if facts.frames > 0 and facts.duration_s <= 0:
            facts = repair(path)
        if facts.frames == 0:
            unreadable += 1
            logger.warning("found %s but it holds no readable frame; left alone", rel)
            continue
        catalog.close_segment(
            rel,
            end_utc=start_utc + facts.duration_s,
            duration_s=facts.duration_s,
            size_bytes=path.stat().st_size,
            frames=facts.frames,
            status=SegmentStatus.RECOVERED,
            start_utc=start_utc,
            camera=camera,
        )
        adopted += 1
        logger.info("adopted %s", rel)

    # The last run lasted at least to its last written frame (a crash skips its last
    # heartbeat); what it left open ended when it was last known alive.
    if latest_end:
        catalog.last_run_alive_at(latest_end)
    alive = max(latest_end, catalog.last_alive_utc() or 0.0)
    catalog.close_open_interruptions(alive or now_utc)
    return RecoveryReport(repaired, adopted, removed, unreadable)
