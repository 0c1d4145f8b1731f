"""Where segments live: ``<root>/<camera>/<YYYYMMDD>/<camera>_<YYYYMMDD>_<HHMMSS>.mkv``.

Names and day folders use local time (a person looks for "yesterday, 14:05"); the catalog
keeps UTC. Two files of one camera that start in the same second get ``-1``, ``-2`` ...
suffixes, so a DST change that repeats an hour or a clock step breaks nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

SEGMENT_SUFFIX = ".mkv"
_NAME = re.compile(
    r"^(?P<camera>[a-z0-9][a-z0-9_-]*)_(?P<day>\d{8})_(?P<time>\d{6})(?:-(?P<n>\d+))?\.mkv$"
)


def day_folder(root: Path, camera_id: str, local: datetime) -> Path:
    return root / camera_id / local.strftime("%Y%m%d")


def segment_path(
    root: Path,
    camera_id: str,
    local: datetime,
    taken: Callable[[Path], bool],
) -> Path:
    """The path for a segment starting at ``local`` that no other segment has."""
    folder = day_folder(root, camera_id, local)
    stem = f"{camera_id}_{local.strftime('%Y%m%d_%H%M%S')}"
    candidate = folder / f"{stem}{SEGMENT_SUFFIX}"
    n = 0
    while taken(candidate):
        n += 1
        candidate = folder / f"{stem}-{n}{SEGMENT_SUFFIX}"
    return candidate


def parse_segment_name(name: str) -> tuple[str, datetime] | None:
    """(camera, naive local start) from a segment file name, or None if it is not one."""
    m = _NAME.match(name)
    if m is None:
        return None
    try:
        start = datetime.strptime(m["day"] + m["time"], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return m["camera"], start


def is_segment_path(root: Path, path: Path) -> bool:
    """True when ``path`` is a segment file under ``root`` in the expected layout."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    parts = rel.parts
    if len(parts) != 3:
        return False
    camera, day, name = parts
    parsed = parse_segment_name(name)
    # The day is read from the parsed name, never by splitting on "_": camera ids may
    # contain "_" themselves ("cam_s_20260329_..." has its day in the third field).
    return parsed is not None and parsed[0] == camera and parsed[1].strftime("%Y%m%d") == day
