"""Storage is watched, not trusted.

The storage root carries an identity marker (``.nvr-volume``, a random id written when the
root is first used). :func:`check_volume` answers: is the root there, writable, the same
volume as before (marker present with the expected id), and how much space is free? An
unmounted drive leaves an empty folder on the system disk: the marker is missing there, so
the root counts as unavailable and nothing is written to the wrong disk.

The free-space and device checks measure the filesystem that holds ``storage.path`` itself
(``statvfs``/``stat`` of the root), never the disk of the program.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

MARKER_NAME = ".nvr-volume"
RESERVE_NAME = ".nvr-reserve"


class StorageState(Enum):
    OK = "ok"
    UNAVAILABLE = "unavailable"  # missing, read-only, or not the same volume
    FULL = "full"


@dataclass(frozen=True, slots=True)
class VolumeUsage:
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True, slots=True)
class VolumeCheck:
    state: StorageState
    reason: str
    usage: VolumeUsage | None = None


def read_marker(root: Path) -> str | None:
    try:
        return (root / MARKER_NAME).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def claim_root(root: Path) -> str:
    """Create the root if needed and return its volume id, writing a marker on first use.

    Only call this for a root the user configured and that is expected to be present
    (start-up); a root whose marker vanished later is reported, not re-claimed."""
    root.mkdir(parents=True, exist_ok=True)
    existing = read_marker(root)
    if existing:
        return existing
    volume_id = uuid.uuid4().hex
    tmp = root / f"{MARKER_NAME}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(volume_id + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / MARKER_NAME)
    _fsync_dir(root)
    return volume_id


def check_volume(root: Path, volume_id: str) -> VolumeCheck:
    """Is ``root`` still the volume we claimed, and writable? (OK or UNAVAILABLE, with the
    usage; whether it is too full is the storage service's call.)"""
    if not root.is_dir():
        return VolumeCheck(StorageState.UNAVAILABLE, f"storage folder {root} is missing")
    marker = read_marker(root)
    if marker != volume_id:
        why = "has no volume marker" if marker is None else "holds another volume's marker"
        return VolumeCheck(
            StorageState.UNAVAILABLE,
            f"storage folder {root} {why}: the drive is probably not mounted",
        )
    if not os.access(root, os.W_OK):
        return VolumeCheck(StorageState.UNAVAILABLE, f"storage folder {root} is not writable")
    try:
        st = os.statvfs(root)
    except OSError as exc:
        return VolumeCheck(StorageState.UNAVAILABLE, f"cannot query {root}: {exc.strerror}")
    if st.f_flag & os.ST_RDONLY:
        return VolumeCheck(StorageState.UNAVAILABLE, f"storage volume at {root} is read-only")
    usage = VolumeUsage(total_bytes=st.f_blocks * st.f_frsize, free_bytes=st.f_bavail * st.f_frsize)
    return VolumeCheck(StorageState.OK, "ok", usage)


def ensure_reserve(root: Path, size_bytes: int) -> bool:
    """Keep a ballast file of ``size_bytes`` in the root, if there is room for it twice over.

    When the disk fills, deleting it gives the catalog room to record retention's deletions
    (a full disk would otherwise refuse the very database writes that free it)."""
    path = root / RESERVE_NAME
    try:
        if path.exists() and path.stat().st_size >= size_bytes:
            return True
        if shutil.disk_usage(root).free < 2 * size_bytes:
            return False
        with open(path, "wb") as f:
            f.truncate(0)
            chunk = b"\0" * 65536
            left = size_bytes
            while left > 0:
                n = f.write(chunk[: min(left, len(chunk))])
                left -= n
            f.flush()
            os.fsync(f.fileno())
        return True
    except OSError:
        path.unlink(missing_ok=True)
        return False


def release_reserve(root: Path) -> int:
    """Delete the ballast file; returns the bytes it held."""
    path = root / RESERVE_NAME
    try:
        size = path.stat().st_size
        path.unlink()
        return size
    except OSError:
        return 0


def _fsync_dir(path: Path) -> None:
    """Make a directory entry durable (Linux; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file_and_dir(path: Path) -> None:
    """Make a closed file and its directory entry durable before the catalog says so."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    _fsync_dir(path.parent)
