"""The main window: Live (grid + recording controls) and Playback tabs, a status bar."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.gui.bridge import EngineBridge
from nvr_gstreamer.gui.grid import LAYOUTS, GridView
from nvr_gstreamer.gui.playback import PlaybackView
from nvr_gstreamer.gui.recording import RecordingPanel

logger = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    stopped = Signal()  # the engine is stopped and every file final: safe to quit

    def __init__(self, app: NvrApp, on_stopped: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.setWindowTitle("nvr_gstreamer")
        self.nvr = app
        self.bridge = EngineBridge(app.engine, self)
        self._closing = False
        self._stopped = False

        self.grid = GridView(self.bridge)
        self.recording = RecordingPanel(self.bridge)
        self.recording.setMinimumWidth(280)
        live = QWidget()
        live_layout = QVBoxLayout(live)
        live_layout.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Layout"))
        self.layout_buttons = QButtonGroup(self)
        for n in LAYOUTS:
            b = QPushButton(f"{n}")
            b.setObjectName(f"layout-{n}")
            b.setCheckable(True)
            b.setChecked(n == self.grid.per_page)
            b.setToolTip(f"{n} camera{'s' if n > 1 else ''} per page")
            b.clicked.connect(lambda _=False, n=n: self.grid.set_layout(n))
            self.layout_buttons.addButton(b)
            bar.addWidget(b)
        self.prev_page = QPushButton("◀")
        self.next_page = QPushButton("▶")
        self.prev_page.clicked.connect(lambda: self.grid.set_page(self.grid.page - 1))
        self.next_page.clicked.connect(lambda: self.grid.set_page(self.grid.page + 1))
        bar.addWidget(self.prev_page)
        bar.addWidget(self.next_page)
        bar.addStretch(1)
        full = QPushButton("Full screen")
        full.setToolTip("F11")
        full.clicked.connect(self.toggle_full_screen)
        bar.addWidget(full)
        live_layout.addLayout(bar)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.grid)
        split.addWidget(self.recording)
        split.setStretchFactor(0, 1)
        split.setCollapsible(0, False)
        live_layout.addWidget(split, 1)

        names = {cid: rt.camera.display_name for cid, rt in app.engine.runtimes.items()}
        self.playback = PlaybackView(app.storage, names)
        self.tabs = QTabWidget()
        self.tabs.addTab(live, "Live")
        self.tabs.addTab(self.playback, "Playback")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.setCentralWidget(self.tabs)

        self.storage_label = QLabel()
        self.storage_label.setObjectName("storage-status")
        self.statusBar().addPermanentWidget(self.storage_label)
        act = QAction("Full screen", self)
        act.setShortcut(QKeySequence(Qt.Key.Key_F11))
        act.triggered.connect(self.toggle_full_screen)
        self.addAction(act)
        esc = QAction("Leave full screen", self)
        esc.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        esc.triggered.connect(self._leave_full_screen)
        self.addAction(esc)

        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(500)
        self.stopped.connect(self._engine_stopped)
        self._on_stopped = on_stopped
        self.resize(1280, 760)
        self.refresh()

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    def _leave_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is not self.playback:
            self.playback.close_player()

    def refresh(self) -> None:
        """Twice a second: snapshots (thread-safe reads), countdowns, clocks, free space."""
        statuses = self.nvr.engine.statuses()
        self.grid.refresh(statuses)
        self.recording.refresh(statuses)
        pages = self.grid.pages
        self.prev_page.setEnabled(pages > 1)
        self.next_page.setEnabled(pages > 1)
        # The storage worker's last check: no file-system call on the GUI thread (a hung
        # network mount must not freeze the window).
        check = self.nvr.storage.state
        space = f", {check.usage.free_bytes / 1e9:.1f} GB free" if check.usage else ""
        self.storage_label.setText(
            f"storage {self.nvr.storage.root}: {check.state.value}{space}"
            + (f" ({check.reason})" if check.state.value != "ok" else "")
        )

    # ---- closing: every file final before the window goes ---------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._stopped:
            event.accept()
            return
        event.ignore()
        if self._closing:
            return
        self._closing = True
        self.statusBar().showMessage("stopping: finalising open recordings…")
        self.setEnabled(False)
        self._timer.stop()
        self.playback.shutdown()
        self.bridge.close()
        nvr, done = self.nvr, self.stopped

        def stop() -> None:
            try:
                nvr.stop()
            finally:
                done.emit()

        import threading

        threading.Thread(target=stop, name="nvr-gui-stop", daemon=True).start()

    def _engine_stopped(self) -> None:
        self._stopped = True
        logger.info("desktop app: engine stopped, every file final")
        if self._on_stopped is not None:
            self._on_stopped()
        self.close()

    @property
    def is_stopped(self) -> bool:
        return self._stopped
