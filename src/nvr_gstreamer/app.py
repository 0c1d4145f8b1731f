"""The composition root: builds clock, storage, catalog, engine from the config and runs them."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from nvr_gstreamer.config import NvrConfig
from nvr_gstreamer.core.clock import Clock, SystemClock
from nvr_gstreamer.core.heartbeat import Heartbeats
from nvr_gstreamer.core.memory import limit_malloc_arenas
from nvr_gstreamer.engine.engine import CameraEngine, MediaFactory
from nvr_gstreamer.engine.gst_media import GstMedia
from nvr_gstreamer.gst.remux import inspect_segment, remux_segment
from nvr_gstreamer.storage.recovery import FileFacts, RecoveryReport, recover
from nvr_gstreamer.storage.service import StorageService

logger = logging.getLogger(__name__)


def _repair(path: Path) -> FileFacts:
    info = remux_segment(path)
    return FileFacts(info.frames, info.duration_s)


def _inspect(path: Path) -> FileFacts:
    info = inspect_segment(path)
    return FileFacts(info.frames, info.duration_s)


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
        self.storage = StorageService(
            config.storage,
            self.clock,
            count_frames=lambda p: inspect_segment(p).frames,
            heartbeats=self.heartbeats,
        )
        self.engine = CameraEngine(
            config, self.clock, storage=self.storage, media=media, heartbeats=self.heartbeats
        )
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
        self.storage.start()
        self.engine.start()
        logger.info(
            "recording %d cameras into %s",
            sum(1 for c in self.config.cameras if c.enabled and c.record),
            self.storage.root,
        )

    def stop(self) -> None:
        """Every camera stopped, every open segment finalised and catalogued. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.engine.stop()
        self.storage.wait_idle()
        try:
            self.storage.catalog.close_open_interruptions(self.clock.wall().timestamp())
        except (OSError, sqlite3.Error) as exc:
            logger.warning("catalog not updated at shutdown (%s); the next start repairs it", exc)
        self.storage.stop()
        logger.info("stopped")
