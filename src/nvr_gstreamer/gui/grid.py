"""The live grid: 1, 4, 9 or 16 tiles per page; double-click a tile for that camera alone.

A tile decodes only while it is visible: showing it asks the bridge to watch the camera,
hiding it (another page, another layout, the window minimised, the playback tab) lets go.
"""

from __future__ import annotations

import math

from PySide6.QtWidgets import QGridLayout, QWidget

from nvr_gstreamer.camera.status import CameraStatus
from nvr_gstreamer.gui.bridge import EngineBridge
from nvr_gstreamer.gui.tile import CameraTile

LAYOUTS = (1, 4, 9, 16)


class GridView(QWidget):
    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("grid")
        self._bridge = bridge
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self.tiles: dict[str, CameraTile] = {}
        self._watching: set[str] = set()
        for cid in bridge.camera_ids():
            tile = CameraTile(cid, bridge.status(cid), self)
            tile.hide()
            tile.visibilityChanged.connect(self._tile_visibility)
            tile.doubleClicked.connect(self.toggle_single)
            self.tiles[cid] = tile
        default = next((n for n in LAYOUTS if n >= len(self.tiles)), LAYOUTS[-1])
        self.per_page = default
        self.page = 0
        self.single: str | None = None
        bridge.statusChanged.connect(self._status_changed)
        bridge.frameReady.connect(self._frame_ready)
        self._arrange()

    # ---- layout ---------------------------------------------------------------------------

    def set_layout(self, per_page: int) -> None:
        if per_page not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}")
        self.per_page = per_page
        self.single = None
        self.page = 0
        self._arrange()

    @property
    def pages(self) -> int:
        return max(1, math.ceil(len(self.tiles) / self.per_page))

    def set_page(self, page: int) -> None:
        self.page = max(0, min(page, self.pages - 1))
        self.single = None
        self._arrange()

    def toggle_single(self, camera_id: str) -> None:
        self.single = None if self.single == camera_id else camera_id
        self._arrange()

    def visible_cameras(self) -> list[str]:
        if self.single is not None:
            return [self.single]
        ids = list(self.tiles)
        return ids[self.page * self.per_page : (self.page + 1) * self.per_page]

    def _arrange(self) -> None:
        shown = self.visible_cameras()
        for tile in self.tiles.values():
            self._layout.removeWidget(tile)
        for cid, tile in self.tiles.items():
            if cid not in shown:
                tile.hide()
        cols = 1 if self.single is not None else int(math.sqrt(self.per_page))
        for i, cid in enumerate(shown):
            tile = self.tiles[cid]
            self._layout.addWidget(tile, i // cols, i % cols)
            tile.show()
        # Keep the cells of a half-empty page the size they would have when full.
        rows = 1 if self.single is not None else cols
        for r in range(4):
            self._layout.setRowStretch(r, 1 if r < rows else 0)
            self._layout.setColumnStretch(r, 1 if r < cols else 0)

    # ---- signals (GUI thread) -------------------------------------------------------------

    def _tile_visibility(self, camera_id: str, visible: bool) -> None:
        if visible and camera_id not in self._watching:
            self._watching.add(camera_id)
            self._bridge.watch(camera_id)
        elif not visible and camera_id in self._watching:
            self._watching.discard(camera_id)
            self._bridge.unwatch(camera_id)
            self.tiles[camera_id].clear()

    def _status_changed(self, status: CameraStatus) -> None:
        tile = self.tiles.get(status.camera_id)
        if tile is not None:
            tile.set_status(status)

    def _frame_ready(self, camera_id: str) -> None:
        frame = self._bridge.take_frame(camera_id)
        tile = self.tiles.get(camera_id)
        if frame is not None and tile is not None and camera_id in self._watching:
            tile.show_frame(frame)

    def refresh(self, statuses: dict[str, CameraStatus]) -> None:
        """The periodic refresh: snapshots (cheap, thread-safe) and the clocks."""
        for cid, tile in self.tiles.items():
            st = statuses.get(cid)
            if st is not None and st != tile.status:
                tile.set_status(st)
            if tile.isVisible():
                tile.update()
