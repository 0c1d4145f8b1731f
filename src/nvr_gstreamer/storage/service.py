"""The storage service: one storage root, its catalog, its health, its retention.

Slow or blocking work — fsync, catalog writes, volume checks, deletions — runs on one
storage worker thread, in order, never on the GStreamer loop. The volume is checked every
``check_interval_s`` and at once when a recorder reports a storage error; state changes
(ok, unavailable, full) go to the listeners (the camera runtimes), which pause or resume
recording. Retention runs periodically and whenever space is short.

Longer than ~300 lines: one worker thread owns the catalog writes, the volume checks and
retention, and their ordering is the point; split, that ordering would be spread across modules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nvr_gstreamer.config import StorageConfig
from nvr_gstreamer.core.clock import Clock
from nvr_gstreamer.core.heartbeat import Heartbeats
from nvr_gstreamer.core.redact import redact
from nvr_gstreamer.storage.catalog import (
    Catalog,
    FootageTimeline,
    GapReason,
    SegmentRow,
    SegmentStatus,
    StaleEpoch,
    Timeline,
    Writer,
)
from nvr_gstreamer.storage.database import PERMANENT_ERRORS, STORAGE_ERRORS
from nvr_gstreamer.storage.event_store import Box, EventStore
from nvr_gstreamer.storage.footage_runs import Part
from nvr_gstreamer.storage.layout import is_segment_path, segment_path
from nvr_gstreamer.storage.remote import S3_ERRORS, ObjectStore, RemoteHealth, Uploader, object_key
from nvr_gstreamer.storage.retention import DAY_S, Janitor, PlannedDelete, plan_retention
from nvr_gstreamer.storage.volume import (
    StorageState,
    VolumeCheck,
    check_volume,
    claim_root,
    ensure_reserve,
    fsync_file_and_dir,
    release_reserve,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

# How often the catalog learns that the recorder still runs. After a crash, the timeline's
# "nvr_stopped" begins at most this long before the crash (or at the last written frame).
RUN_HEARTBEAT_S = 10.0

StateListener = Callable[[VolumeCheck], None]


@dataclass(frozen=True, slots=True)
class StorageCounters:
    segments_written: int = 0
    retention_deletions: int = 0


@dataclass(frozen=True, slots=True)
class CatalogHealth:
    backend: str  # sqlite | postgresql
    error: str | None  # why the last write failed, while writes wait
    pending_writes: int  # catalog and file work kept in order until it can be done


class StorageService:
    def __init__(
        self,
        config: StorageConfig,
        clock: Clock,
        check_interval_s: float = 2.0,
        retention_interval_s: float = 300.0,
        count_frames: Callable[[Path], int] | None = None,
        heartbeats: Heartbeats | None = None,
        catalog_url: str | None = None,
        node: str | None = None,
    ) -> None:
        """``count_frames(path)`` reads a closed segment and counts its video frames (the
        GStreamer layer provides it; without it, the catalog's frame counts stay empty).
        ``catalog_url``: a PostgreSQL catalog instead of the storage root's SQLite file;
        ``node``: this recorder's id in a cluster (every camera's writes are then fenced by
        the epoch of its lease: :meth:`set_writer`)."""
        self.config = config
        self._count_frames = count_frames
        self._heartbeats = heartbeats  # the worker beats "storage" at every check
        self.root = config.path
        self._clock = clock
        self._check_interval_s = check_interval_s
        self._retention_interval_s = retention_interval_s
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nvr-storage")
        self.volume_id = claim_root(self.root)
        self.catalog = Catalog(self.root, catalog_url, node)
        # Cluster mode: the writer (node, epoch) of each camera this node holds; a camera
        # without one is not this node's to write for.
        self._writers: dict[str, Writer] | None = {} if node is not None else None
        self._refused = 0
        remote = config.remote
        self.objects = ObjectStore(remote) if remote is not None else None
        self._uploader = (
            Uploader(
                self.objects,
                self.root,
                int(remote.spool_max_gb * 1e9),
                self.catalog.set_object,
            )
            if self.objects is not None and remote is not None
            else None
        )
        self.events = EventStore(self.catalog)
        total = self._check_total()
        # Ballast for the catalog when the disk fills (see ensure_reserve).
        self._reserve_size = max(64 * 1024, min(4 * 1024 * 1024, total // 50))
        ensure_reserve(self.root, self._reserve_size)
        self._janitor = Janitor(
            self.catalog,
            self._on_deleted,
            self._defer_row_removal,
            self.objects.delete if self.objects is not None else None,
        )
        self._listeners: list[StateListener] = []
        self._lock = threading.Lock()
        self._check = check_volume(self.root, self.volume_id)
        self._open: set[str] = set()  # relative paths being written
        self._taken: set[Path] = set()
        self._segments_written = 0
        self._deletions = 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._last_retention = 0.0
        self._pending: list[Callable[[], None]] = []  # catalog work waiting for the volume
        self._catalog_error: str | None = None  # why the last catalog write failed, until one works
        self._run_id: int | None = None
        self._run_alive_at = 0.0  # monotonic, last heartbeat written

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        # A run of the recorder: the timeline says "nvr_stopped" only outside every run.
        self._run_id = self.catalog.begin_run(self._clock.wall().timestamp())
        self._run_alive_at = self._clock.monotonic()
        if self._heartbeats is not None:  # watched from now on, even if it never turns
            self._heartbeats.beat("storage")
        if self._uploader is not None:
            # What a previous run left on the disk goes first, in order.
            for row in self.catalog.not_uploaded():
                self._uploader.enqueue(row.path, self._key(row.path, row.node, row.epoch))
            self._uploader.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="nvr-storage-watch")
        self._ticker.daemon = True
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(5)
        if self._heartbeats is not None:
            self._heartbeats.forget("storage")  # stopped on purpose
        with suppress(RuntimeError):
            self.submit(lambda: self._heartbeat(force=True))
        self._worker.shutdown(wait=True)
        if self._uploader is not None:
            self._uploader.stop()
        self.catalog.close()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        return self._worker.submit(fn)

    # ---- health ---------------------------------------------------------------------------

    @property
    def state(self) -> VolumeCheck:
        return self._check

    # ---- object storage ------------------------------------------------------------------

    def _key(self, rel_path: str, node: str | None, epoch: int | None) -> str:
        prefix = self.config.remote.prefix if self.config.remote is not None else ""
        return object_key(prefix, rel_path, node, epoch)

    @property
    def remote_health(self) -> RemoteHealth | None:
        """Uploads to object storage (None: storage.remote is not set)."""
        return self._uploader.health if self._uploader is not None else None

    def readable_path(self, row: SegmentRow) -> Path | None:
        """A local file with the segment's content: its own file, or (uploaded) the object
        fetched into the cache; None when neither can be had now."""
        path = self.root / row.path
        if path.is_file():
            return path
        if row.object_key is None or self.objects is None:
            return None
        try:
            return self.objects.fetch(row.object_key, self.root)
        except (*S3_ERRORS, OSError) as exc:
            logger.warning("cannot read %s from object storage: %s", row.path, redact(str(exc)))
            return None

    def readable_parts(self, rows: Sequence[SegmentRow]) -> list[Part]:
        """The closed segments of ``rows`` as files to read: their own in the root's layout,
        or fetched from object storage (one download each, then cached)."""
        root = self.root.resolve()
        parts = []
        for r in rows:
            if r.status is SegmentStatus.RECORDING or not r.duration_s:
                continue
            path: Path | None = (root / r.path).resolve()
            if path is None or not (is_segment_path(root, path) and path.is_file()):
                path = self.readable_path(r) if r.object_key is not None else None
            if path is not None:
                parts.append(Part(path.resolve(), r.start_utc, r.duration_s))
        return parts

    @property
    def catalog_health(self) -> CatalogHealth:
        return CatalogHealth(self.catalog.backend, self._catalog_error, len(self._pending))

    @property
    def segment_seconds(self) -> float:
        return float(self.config.segment_seconds)

    @property
    def pre_record_seconds(self) -> float:
        return float(self.config.pre_record_seconds)

    def subscribe(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    def check_now(self, then: StateListener | None = None) -> None:
        """Re-check the volume soon (after a recorder's storage error); ``then`` gets the
        result on the storage worker, whether or not the state changed."""

        def run() -> None:
            self._check_and_act()
            if then is not None:
                then(self._check)

        self.submit(run)

    def _tick_loop(self) -> None:
        while not self._stop.wait(self._check_interval_s):
            try:
                self.submit(self._turn).result()
            except RuntimeError:
                return  # worker shut down
            except Exception:
                logger.exception("storage check failed")

    def _heartbeat(self, force: bool = False) -> None:
        """Keep the run's end current (every RUN_HEARTBEAT_S, and at stop). Best effort: on a
        volume that is gone it is skipped, never queued."""
        now = self._clock.monotonic()
        if self._run_id is None or (not force and now - self._run_alive_at < RUN_HEARTBEAT_S):
            return
        if self._check.state is StorageState.UNAVAILABLE:
            return
        try:
            self.catalog.run_alive(self._run_id, self._clock.wall().timestamp())
            self._run_alive_at = now
        except STORAGE_ERRORS as exc:
            logger.debug("run heartbeat not written: %s", exc)

    def _check_total(self) -> int:
        usage = check_volume(self.root, self.volume_id).usage
        return usage.total_bytes if usage else 0

    def _min_free_bytes(self, total: int) -> int:
        return int(total * self.config.min_free_percent / 100.0)

    def _durable(self, op: Callable[[], None]) -> None:
        """Run catalog/file work now if the volume is ours, else keep it (in order) until it
        is back: nothing is written to the wrong disk, and nothing is forgotten."""
        if not self._pending and check_volume(self.root, self.volume_id).state is not (
            StorageState.UNAVAILABLE
        ):
            try:
                op()
                self._catalog_error = None
                return
            except StaleEpoch as exc:
                self._refuse(exc)
                return
            except PERMANENT_ERRORS as exc:
                logger.error("catalog write dropped (a retry cannot mend it): %s", exc)
                return
            except STORAGE_ERRORS as exc:
                logger.warning("storage write deferred: %s", exc)
                self._catalog_error = redact(str(exc))
        self._pending.append(op)

    def _refuse(self, exc: StaleEpoch) -> None:
        self._refused += 1
        logger.warning("catalog write refused: %s", exc)

    def _replay_pending(self) -> None:
        while self._pending:
            op = self._pending[0]
            try:
                op()
            except StaleEpoch as exc:
                self._refuse(exc)  # its camera moved on meanwhile: dropped, not retried
            except PERMANENT_ERRORS as exc:
                logger.error("deferred catalog write dropped (a retry cannot mend it): %s", exc)
            except STORAGE_ERRORS as exc:
                error = redact(str(exc))
                # Said once per cause; every retry (each check) at DEBUG.
                log = logger.debug if error == self._catalog_error else logger.warning
                log("deferred storage writes (%d) still failing: %s", len(self._pending), error)
                self._catalog_error = error
                return
            self._pending.pop(0)
        if self._catalog_error is not None:
            logger.info("storage writes caught up (catalog %s)", self.catalog.where)
        self._catalog_error = None

    def _turn(self) -> None:
        """One turn of the worker's periodic work (on the worker): it is alive, then it looks."""
        if self._heartbeats is not None:
            self._heartbeats.beat("storage")
        self._check_and_act()

    def _check_and_act(self) -> None:
        check = check_volume(self.root, self.volume_id)
        if check.state is not StorageState.UNAVAILABLE and self._pending:
            self._replay_pending()
        if check.state is StorageState.OK and check.usage is not None:
            now = self._clock.monotonic()
            short = check.usage.free_bytes < self._min_free_bytes(check.usage.total_bytes)
            critical = check.usage.free_bytes < self._reserve_size
            if short or critical or now - self._last_retention >= self._retention_interval_s:
                self._last_retention = now
                self._run_retention(force_space=critical)
                check = check_volume(self.root, self.volume_id)
            usage = check.usage
            roomy = usage is not None and usage.free_bytes >= 3 * self._reserve_size
            if check.state is StorageState.OK and roomy:
                ensure_reserve(self.root, self._reserve_size)
            # "Full": nothing could be freed and less than a segment's worth of room is left.
            if check.usage is not None and check.usage.free_bytes < self._reserve_size:
                check = VolumeCheck(
                    StorageState.FULL, f"storage at {self.root} is full", check.usage
                )
        self._set(check)
        self._heartbeat()

    def _set(self, check: VolumeCheck) -> None:
        old = self._check
        self._check = check
        if check.state is StorageState.UNAVAILABLE and old.state is not StorageState.UNAVAILABLE:
            self.catalog.reset()  # its file handle belongs to a volume that is gone
        if old.state is not check.state:
            log = logger.info if check.state is StorageState.OK else logger.warning
            log("storage %s -> %s: %s", old.state.value, check.state.value, check.reason)
            for listener in list(self._listeners):
                try:
                    listener(check)
                except Exception:
                    logger.exception("storage listener failed")

    def report_disk_full(self, then: StateListener | None = None) -> None:
        """A recorder hit ENOSPC: retention at once, then decide (``then`` gets the result)."""

        def act() -> None:
            self._run_retention(force_space=True)
            self._check_and_act()
            if then is not None:
                then(self._check)

        self.submit(act)

    # ---- retention ------------------------------------------------------------------------

    def _run_retention(self, force_space: bool = False) -> None:
        check = check_volume(self.root, self.volume_id)
        if check.state is StorageState.UNAVAILABLE:
            return  # never delete on a volume we cannot vouch for
        if force_space:
            freed = release_reserve(self.root)
            if freed:
                logger.info("disk full: released the %d-byte reserve for the catalog", freed)
                check = check_volume(self.root, self.volume_id)
        usage = check.usage
        min_free = self.config.min_free_percent
        if force_space and usage is not None:
            min_free = max(min_free, 100.0 * (self._reserve_size * 4) / usage.total_bytes)
        with self._lock:
            protected = set(self._open)
        now = self._clock.wall().timestamp()
        segments = self.catalog.segments(mine=True)
        events_days = self.config.events_retention_days
        spans = {}
        if events_days > self.config.retention_days > 0:
            since = now - events_days * DAY_S
            cameras = {s.camera for s in segments}
            spans = {c: self.events.spans(c, since, now) for c in cameras}
        plan = plan_retention(
            segments,
            now,
            self.config.retention_days,
            usage,
            min_free,
            protected,
            events_days,
            spans,
        )
        if plan.deletes:
            n = self._janitor.execute(plan)
            logger.info("retention deleted %d segments (%d bytes)", n, plan.bytes_freed)
        self._forget_events(plan.deletes, now)
        if plan.short_of_space:
            logger.warning("retention cannot free enough space on %s", self.root)

    def _forget_events(self, deletes: Sequence[PlannedDelete], now: float) -> None:
        """Events go with their footage: by age, and once no segment around them is left."""
        days = max(self.config.retention_days, self.config.events_retention_days)
        latest: dict[str, float] = {}
        for d in deletes:
            end = d.segment.end_utc or d.segment.start_utc
            latest[d.segment.camera] = max(end, latest.get(d.segment.camera, end))
        try:
            if days > 0:
                for camera in self.events.cameras():
                    self.events.delete_before(camera, now - days * DAY_S)
            for camera, end in latest.items():
                self.events.delete_without_footage(camera, end)
        except STORAGE_ERRORS as exc:
            logger.debug("events not pruned now: %s", exc)

    def _defer_row_removal(self, rel_path: str) -> None:
        """The catalog could not be written (full disk): the row follows the file later."""
        self._pending.append(lambda: self.catalog.remove_segment(rel_path))

    def _on_deleted(self, item: PlannedDelete) -> None:
        self._deletions += 1
        logger.debug("deleted %s (%s)", item.segment.path, item.reason.value)

    @property
    def counters(self) -> StorageCounters:
        return StorageCounters(self._segments_written, self._deletions)

    # ---- segments -------------------------------------------------------------------------

    def new_segment_path(self, camera_id: str) -> Path | None:
        """Name the next file of a camera and create its folder. Runs on a streaming thread.
        None when the volume cannot be vouched for: nothing is written to the wrong disk."""
        if check_volume(self.root, self.volume_id).state is not StorageState.OK:
            self.check_now()
            return None
        local = self._clock.wall().astimezone()
        with self._lock:
            path = segment_path(
                self.root, camera_id, local, lambda p: p in self._taken or p.exists()
            )
            self._taken.add(path)
            self._open.add(self._rel(path))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            logger.warning("cannot create %s: %s", path.parent, exc.strerror)
            return None
        return path

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # ---- cluster mode ---------------------------------------------------------------------

    def set_writer(self, camera_id: str, writer: Writer | None) -> None:
        """Cluster mode: this node now writes for the camera under ``writer``'s epoch (None:
        the camera is no longer this node's; its writes from now on are refused)."""
        assert self._writers is not None, "not a cluster node"
        if writer is None:
            self._writers.pop(camera_id, None)
        else:
            self._writers[camera_id] = writer

    def _writer(self, camera_id: str) -> Writer | None:
        """The camera's writer, captured when the work is asked for (not when it runs: a
        write kept while the database was away keeps the epoch it was made under)."""
        if self._writers is None:
            return None
        writer = self._writers.get(camera_id)
        # No lease: a write with an epoch no lease can have, refused like a stale one.
        return writer if writer is not None else Writer(self.catalog.node or "", -1)

    def note_failover(self, camera_id: str, lost_node: str, since_utc: float) -> None:
        """Cluster mode: this node took the camera over from ``lost_node``, last heard of at
        ``since_utc``: its open rows end there and a ``failover`` gap begins (until this
        node's first file)."""
        writer = self._writer(camera_id)

        def run() -> None:
            self.catalog.end_lost_segments(camera_id, lost_node, since_utc, writer)
            self.catalog.begin_interruption(camera_id, GapReason.FAILOVER, since_utc, writer)

        self.submit(lambda: self._durable(run))

    @property
    def refused_writes(self) -> int:
        """Catalog writes refused because their camera's lease moved on (cluster mode)."""
        return self._refused

    # ---- segments, continued --------------------------------------------------------------

    def segment_opened(self, camera_id: str, path: Path, start_utc: float) -> None:
        rel = self._rel(path)
        writer = self._writer(camera_id)

        def run() -> None:
            self.catalog.add_segment(camera_id, rel, start_utc, writer)
            self.catalog.end_interruption(camera_id, start_utc, file_start=True, writer=writer)

        self.submit(lambda: self._durable(run))

    def segment_closed(
        self,
        camera_id: str,
        path: Path,
        start_utc: float,
        duration_s: float,
        done: Callable[[], Any] | None = None,
    ) -> None:
        rel = self._rel(path)
        writer = self._writer(camera_id)

        def run() -> None:
            try:
                fsync_file_and_dir(path)
                size = path.stat().st_size
            except OSError as exc:
                logger.warning("segment %s could not be made durable: %s", rel, exc.strerror)
                size = 0
            frames = None
            if self._count_frames is not None and size > 0:
                try:
                    frames = self._count_frames(path)
                except Exception:
                    logger.exception("could not count the frames of %s", rel)
            self.catalog.close_segment(
                rel,
                end_utc=start_utc + duration_s,
                duration_s=duration_s,
                size_bytes=size,
                frames=frames,
                status=SegmentStatus.CLOSED,
                start_utc=start_utc,
                camera=camera_id,
                writer=writer,
            )
            with self._lock:
                self._open.discard(rel)
                self._taken.discard(path)
                self._segments_written += 1
            if self._uploader is not None and size > 0:
                node, epoch = (writer.node, writer.epoch) if writer else (None, None)
                self._uploader.enqueue(rel, self._key(rel, node, epoch))
            if done is not None:
                done()

        self.submit(lambda: self._durable(run))

    def interruption(
        self, camera_id: str, reason: GapReason | None, at_utc: float | None = None
    ) -> None:
        """The camera stopped being recorded for ``reason`` (None: it is recorded again), at
        ``at_utc`` (default now; an outage is dated back to its last frame)."""
        now = self._clock.wall().timestamp() if at_utc is None else at_utc
        writer = self._writer(camera_id)

        def run() -> None:
            if reason is None:
                self.catalog.end_interruption(camera_id, now, writer=writer)
            else:
                self.catalog.begin_interruption(camera_id, reason, now, writer)

        self.submit(lambda: self._durable(run))

    def new_event_id(self) -> int:
        return self.events.new_id()

    def event_started(
        self, event_id: int, camera_id: str, start_utc: float, score: float, boxes: Sequence[Box]
    ) -> None:
        """A motion event began (its row waits, in order, while the volume is away)."""
        store = self.events

        def run() -> None:
            store.begin(event_id, camera_id, start_utc, score, boxes)

        self.submit(lambda: self._durable(run))

    def event_ended(
        self,
        event_id: int,
        end_utc: float,
        score: float,
        peak_utc: float,
        boxes: Sequence[Box],
        reason: str,
        thumbnail: bytes | None,
    ) -> None:
        store = self.events

        def run() -> None:
            store.end(event_id, end_utc, score, peak_utc, boxes, reason, thumbnail)

        self.submit(lambda: self._durable(run))

    def timeline(self, camera_id: str, start_utc: float, end_utc: float) -> Timeline:
        """The camera's footage and gaps in the range, up to now (API and desktop alike)."""
        now = self._clock.wall().timestamp()
        return self.catalog.timeline(camera_id, start_utc, end_utc, now, current_run=self._run_id)

    def footage_timelines(
        self, camera_ids: Sequence[str], start_utc: float, end_utc: float, now_utc: float
    ) -> list[FootageTimeline]:
        """As :meth:`timeline`, with the number of segments instead of the segments, for each
        of ``camera_ids`` (ranges of days, many cameras), with one horizon, in one read."""
        return self.catalog.footage_timelines(
            camera_ids, start_utc, end_utc, now_utc, current_run=self._run_id
        )

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Block until everything submitted so far is done (tests, shutdown)."""
        self.submit(lambda: None).result(timeout_s)
