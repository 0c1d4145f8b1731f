"""The composition root: builds clock, storage, catalog, engine from the config and runs them."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from nvr_gstreamer.cluster.node import Claim, ClusterNode, NodeSettings
from nvr_gstreamer.config import NvrConfig
from nvr_gstreamer.core.clock import Clock, SystemClock
from nvr_gstreamer.core.heartbeat import Heartbeats
from nvr_gstreamer.core.memory import limit_malloc_arenas
from nvr_gstreamer.engine.engine import CameraEngine, MediaFactory
from nvr_gstreamer.engine.exports import ExportFailed, ExportService
from nvr_gstreamer.engine.gst_media import GstMedia
from nvr_gstreamer.engine.mqtt_link import MqttLink
from nvr_gstreamer.gst.footage import ExportError, ExportResult, export_mp4
from nvr_gstreamer.gst.remux import inspect_segment, remux_segment
from nvr_gstreamer.storage.catalog import Writer
from nvr_gstreamer.storage.database import STORAGE_ERRORS
from nvr_gstreamer.storage.footage_runs import Footage, Part
from nvr_gstreamer.storage.recovery import FileFacts, RecoveryReport, recover
from nvr_gstreamer.storage.service import StorageService
from nvr_gstreamer.storage.volume import StorageState

logger = logging.getLogger(__name__)


def _repair(path: Path) -> FileFacts:
    info = remux_segment(path)
    return FileFacts(info.frames, info.duration_s)


def _inspect(path: Path) -> FileFacts:
    info = inspect_segment(path)
    return FileFacts(info.frames, info.duration_s)


def _export(
    footage: Footage,
    start_utc: float,
    end_utc: float,
    dest: Path,
    progress: Callable[[float], None],
    cancel: threading.Event,
) -> ExportResult:
    """export_mp4 for export jobs: its errors are reasons to show as they are."""
    try:
        # An export slower than real time is stuck: 10 minutes plus the range's length.
        timeout_s = 600.0 + (end_utc - start_utc)
        return export_mp4(footage, start_utc, end_utc, dest, progress, cancel, timeout_s)
    except ExportError as exc:
        raise ExportFailed(str(exc)) from None


def _export_service(config: NvrConfig, clock: Clock, storage: StorageService) -> ExportService:
    """Export jobs over the storage's catalog and files."""

    def parts_of(camera_id: str, start_utc: float, end_utc: float) -> list[Part]:
        """Closed segments of the range; only files in the storage root's layout."""
        return storage.readable_parts(storage.catalog.segments(camera_id, start_utc, end_utc))

    def unavailable() -> str | None:
        check = storage.state
        return None if check.state is StorageState.OK else check.reason or check.state.value

    def room() -> int | None:
        """Bytes that may be written before retention deletes recordings to make space."""
        try:
            usage = shutil.disk_usage(storage.root)
        except OSError:
            return None
        return usage.free - int(usage.total * config.storage.min_free_percent / 100.0)

    return ExportService(
        config.exports,
        storage.root,
        clock,
        parts_of,
        _export,
        known_cameras=lambda: [c.id for c in config.cameras],
        unavailable=unavailable,
        room=room,
    )


class NvrApp:
    """Storage first (claim the root, recover what a crash left), then the cameras."""

    def __init__(
        self, config: NvrConfig, clock: Clock | None = None, media: MediaFactory = GstMedia
    ) -> None:
        # Before the first worker or streaming thread: with one malloc arena per thread, RSS
        # grew with every camera fault (memory freed, but kept in arenas; see core/memory.py).
        limit_malloc_arenas()
        self.config = config
        self.clock = clock or SystemClock()
        # Every loop beats as it turns: /api/health and the systemd watchdog read them.
        self.heartbeats = Heartbeats(self.clock)
        url = config.catalog.url.get_secret_value() if config.catalog.url else None
        cluster = config.cluster
        self.storage = StorageService(
            config.storage,
            self.clock,
            catalog_url=url,
            count_frames=lambda p: inspect_segment(p).frames,
            heartbeats=self.heartbeats,
            node=cluster.node_id if cluster is not None else None,
        )
        self.engine = CameraEngine(
            config, self.clock, storage=self.storage, media=media, heartbeats=self.heartbeats
        )
        self.cluster: ClusterNode | None = None
        if cluster is not None and url is not None:
            settings = NodeSettings(
                cluster.node_id,
                cluster.capacity,
                cluster.site,
                cluster.lease_seconds,
                cluster.api_url or f"http://{config.api.host}:{config.api.port}",
            )
            cameras = [(c.id, c.site) for c in config.cameras if c.enabled]
            self.cluster = ClusterNode(
                url, settings, cameras, self.clock, self._claimed, self._lost, self.heartbeats
            )
        self.exports = _export_service(config, self.clock, self.storage)
        self.mqtt = MqttLink(config, self.engine) if config.mqtt is not None else None
        self.recovery: RecoveryReport | None = None
        self._stopped = False

    def start(self) -> None:
        self.recovery = recover(
            self.storage.catalog, _repair, _inspect, self.clock.wall().timestamp()
        )
        r = self.recovery
        if r.repaired or r.adopted or r.removed_rows or r.unreadable:
            logger.info(
                "start-up recovery: %d repaired, %d adopted, %d stale rows removed, "
                "%d unreadable",
                r.repaired,
                r.adopted,
                r.removed_rows,
                r.unreadable,
            )
        # Motion events a crash left open end when the recorder was last known alive.
        last_alive = self.storage.catalog.last_alive_utc()
        self.storage.events.close_open(last_alive or self.clock.wall().timestamp())
        self.storage.start()
        self.exports.start()
        # A cluster node records only the cameras it claims (started as it claims them).
        self.engine.start(cameras=self.cluster is None)
        if self.cluster is not None:
            self.cluster.start()
        if self.mqtt is not None:
            self.mqtt.start()
        logger.info(
            "recording %d cameras into %s",
            sum(1 for c in self.config.cameras if c.enabled and c.record),
            self.storage.root,
        )

    # ---- cluster mode (on the cluster's thread) --------------------------------------------

    def _claimed(self, claim: Claim) -> None:
        node = self.storage.catalog.node or ""
        self.storage.set_writer(claim.camera, Writer(node, claim.epoch))
        if claim.lost_node is not None and claim.lost_since_utc is not None:
            self.storage.note_failover(claim.camera, claim.lost_node, claim.lost_since_utc)
        self.engine.start_camera(claim.camera)

    def _lost(self, camera_id: str) -> None:
        self.storage.set_writer(camera_id, None)
        self.engine.stop_camera(camera_id)

    def stop(self) -> None:
        """Every camera stopped, every open segment finalised and catalogued. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.exports.stop()
        if self.mqtt is not None:
            self.mqtt.stop()
        if self.cluster is not None:
            self.cluster.stop()  # no more claims; the cameras stop next, then move
        self.engine.stop()
        self.storage.wait_idle()
        if self.cluster is not None:
            self.cluster.release()
        try:
            self.storage.catalog.close_open_interruptions(self.clock.wall().timestamp())
        except STORAGE_ERRORS as exc:
            logger.warning("catalog not updated at shutdown (%s); the next start repairs it", exc)
        self.storage.stop()
        logger.info("stopped")
