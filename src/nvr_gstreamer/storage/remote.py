"""Segments on S3-compatible object storage (``storage.remote``).

The recorder writes to its local folder as always; each closed, catalogued segment is then
uploaded by the :class:`Uploader`, in order, on a thread of its own: the object is written,
read back (its size and its MD5, which S3 returns as the ETag of a single-part upload)
against the file, recorded in the catalog (``object_key``), and only then is the local file
removed. While the endpoint is unreachable the segments wait on the local disk (the *spool*),
in order; the state says so, and says when the spool outgrows ``spool_max_gb``. A restart
uploads what a previous run left. A segment whose row is gone by the time it is uploaded
(deleted by retention, or refused: its camera moved to another node) leaves no object.

Object keys carry the node and the lease epoch of the segment in cluster mode
(``<prefix>e<epoch>/<node>/<camera>/<day>/<file>``), so a node that hung and came back can
never overwrite another node's object; on a single recorder they are ``<prefix><camera>/
<day>/<file>``, the same layout as the local folder.

Reading (:class:`ObjectStore`): range reads for the HTTP API, and whole objects into a small
read-through cache in the storage root for the GStreamer readers (playback, export,
previews), which read files.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from nvr_gstreamer.config import RemoteStorageConfig
from nvr_gstreamer.core.redact import redact
from nvr_gstreamer.storage.database import DB_ERRORS

__all__ = ["CACHE_DIR", "ObjectStore", "RemoteHealth", "RemoteState", "Uploader", "object_key"]

logger = logging.getLogger(__name__)

S3_ERRORS = (BotoCoreError, ClientError)
CACHE_DIR = ".remote-cache"  # in the storage root: remote segments read by GStreamer
CACHE_MAX_FILES = 64
_RETRY_S = (1.0, 2.0, 4.0, 8.0)  # waits after failed uploads (the last one repeats)


def object_key(prefix: str, rel_path: str, node: str | None, epoch: int | None) -> str:
    if node is None or epoch is None:
        return f"{prefix}{rel_path}"
    return f"{prefix}e{epoch}/{node}/{rel_path}"


class UploadMismatch(Exception):
    """The object read back differs from the file (size or checksum)."""


class ObjectStore:
    def __init__(self, config: RemoteStorageConfig) -> None:
        self.bucket = config.bucket
        self.prefix = config.prefix
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=config.endpoint,
            region_name=config.region,
            aws_access_key_id=config.access_key.get_secret_value(),
            aws_secret_access_key=config.secret_key.get_secret_value(),
            config=BotoConfig(
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=3,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def put_verified(self, key: str, path: Path) -> int:
        """Upload ``path`` as ``key`` and check the stored object against it; its size."""
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
            size = f.tell()
            f.seek(0)
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=f,
                ContentLength=size,
                ContentMD5=base64.b64encode(digest.digest()).decode(),
                ContentType="video/x-matroska",
            )
        head = self._client.head_object(Bucket=self.bucket, Key=key)
        etag = str(head.get("ETag", "")).strip('"')
        if int(head["ContentLength"]) != size or etag != digest.hexdigest():
            raise UploadMismatch(
                f"{key}: stored {head['ContentLength']} bytes, md5 {etag}; file {size} bytes, "
                f"md5 {digest.hexdigest()}"
            )
        return size

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=key)

    def size(self, key: str) -> int:
        return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def read(self, key: str, first: int, last: int) -> Iterator[bytes]:
        """Bytes ``first`` to ``last`` (inclusive) of the object, in chunks."""
        res = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={first}-{last}")
        body = res["Body"]
        try:
            yield from iter(lambda: body.read(1 << 16), b"")
        finally:
            body.close()

    def fetch(self, key: str, root: Path) -> Path:
        """The object as a local file in the storage root's cache (downloaded once; the
        cache keeps the most recently used files)."""
        dest = root / CACHE_DIR / key
        if dest.is_file():
            os.utime(dest)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        self._client.download_file(self.bucket, key, str(part))
        part.replace(dest)
        _trim_cache(root / CACHE_DIR)
        return dest


def _trim_cache(folder: Path) -> None:
    files = sorted(folder.rglob("*.mkv"), key=lambda p: p.stat().st_mtime)
    for old in files[:-CACHE_MAX_FILES]:
        old.unlink(missing_ok=True)


class RemoteState(Enum):
    OK = "ok"
    UNREACHABLE = "unreachable"  # uploads failing; segments wait on the local disk
    SPOOL_FULL = "spool_full"  # ... and more of them than storage.remote.spool_max_gb


@dataclass(frozen=True, slots=True)
class RemoteHealth:
    state: RemoteState
    reason: str | None
    waiting: int  # segments not uploaded yet
    waiting_bytes: int
    uploaded: int  # since start


@dataclass(frozen=True, slots=True)
class _Job:
    rel_path: str
    key: str


class Uploader:
    """Uploads closed segments in order, on its own thread (see the module's docstring)."""

    def __init__(
        self,
        store: ObjectStore,
        root: Path,
        spool_max_bytes: int,
        set_object: Callable[[str, str], bool],
    ) -> None:
        """``set_object(rel_path, key)`` records the upload in the catalog (False: the row is
        gone; the object is then removed again)."""
        self._store = store
        self._root = root
        self._spool_max = spool_max_bytes
        self._set_object = set_object
        self._jobs: deque[_Job] = deque()
        self._cv = threading.Condition()
        self._stop = False
        self._error: str | None = None
        self._uploaded = 0
        self._thread = threading.Thread(target=self._run, name="nvr-upload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the upload in progress; what waits is uploaded by the next run."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(60)

    def enqueue(self, rel_path: str, key: str) -> None:
        with self._cv:
            self._jobs.append(_Job(rel_path, key))
            self._cv.notify_all()

    @property
    def health(self) -> RemoteHealth:
        with self._cv:
            jobs = list(self._jobs)
            error = self._error
        waiting = sum(_size(self._root / j.rel_path) for j in jobs)
        if error is None:
            state = RemoteState.OK
        elif waiting > self._spool_max:
            state = RemoteState.SPOOL_FULL
        else:
            state = RemoteState.UNREACHABLE
        return RemoteHealth(state, error, len(jobs), waiting, self._uploaded)

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cv:
                while not self._jobs and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                job = self._jobs[0]
            try:
                self._upload(job)
            except (*S3_ERRORS, *DB_ERRORS, UploadMismatch, OSError) as exc:
                message = redact(str(exc))
                if message != self._error:
                    logger.warning("upload of %s failed, kept locally: %s", job.rel_path, message)
                self._error = message
                wait = _RETRY_S[min(failures, len(_RETRY_S) - 1)]
                failures += 1
                with self._cv:
                    self._cv.wait_for(lambda: self._stop, wait)
                continue
            if self._error is not None:
                logger.info("object storage reachable again: uploading what waited")
            self._error = None
            failures = 0
            with self._cv:
                self._jobs.popleft()

    def _upload(self, job: _Job) -> None:
        path = self._root / job.rel_path
        if not path.is_file():
            logger.info("%s is gone before its upload (retention); skipped", job.rel_path)
            return
        self._store.put_verified(job.key, path)
        if not self._set_object(job.rel_path, job.key):
            # No row to point at it (deleted, or refused for a camera that moved on).
            logger.warning("%s has no catalog row: its object is removed", job.rel_path)
            self._store.delete(job.key)
            return
        path.unlink()
        self._uploaded += 1
        logger.debug("uploaded %s as %s", job.rel_path, job.key)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
