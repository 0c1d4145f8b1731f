"""Recording controls: one row per camera and 'record all' / 'stop all'.

The rows show the engine's state, never the click: a click only records a pending request
("starting…", "finishing the file…") until the engine's status confirms it. "Off" is
confirmed when the engine says the last file is final. Changes the engine makes by itself
(camera lost, disk full, the HTTP API) arrive the same way and are shown the same way.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nvr_gstreamer.camera.status import CameraStatus
from nvr_gstreamer.gui.badges import RecordingView, recording_view
from nvr_gstreamer.gui.bridge import EngineBridge
from nvr_gstreamer.gui.threads import on_gui_thread
from nvr_gstreamer.gui.tile import TONE_COLORS


class RecordingRow:
    def __init__(self, camera_id: str, name: str) -> None:
        self.camera_id = camera_id
        self.name = QLabel(name)
        self.dot = QLabel("●")
        self.state = QLabel()
        self.state.setObjectName(f"rec-state-{camera_id}")
        self.button = QPushButton()
        self.button.setObjectName(f"rec-button-{camera_id}")
        self.button.setMinimumWidth(70)
        self.pending: bool | None = None
        self.view: RecordingView | None = None

    def show(self, status: CameraStatus) -> None:
        assert on_gui_thread()
        if self.pending is True and status.recording_wanted:
            self.pending = None
        if self.pending is False and not status.recording and not status.recording_wanted:
            self.pending = None
        view = recording_view(status, self.pending)
        self.view = view
        self.state.setText(view.text)
        self.button.setText(view.button)
        self.button.setEnabled(self.pending is None)
        color = TONE_COLORS[view.tone].name() if view.recording else "#bbbbbb"
        self.dot.setStyleSheet(f"color: {color}; font-size: 16px;")
        self.dot.setToolTip("recording" if view.recording else "not recording")


class RecordingPanel(QWidget):
    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recording-panel")
        self._bridge = bridge
        outer = QVBoxLayout(self)
        title = QLabel("<b>Recording</b>")
        outer.addWidget(title)
        grid = QGridLayout()
        self.rows: dict[str, RecordingRow] = {}
        for i, cid in enumerate(bridge.camera_ids()):
            st = bridge.status(cid)
            row = RecordingRow(cid, st.name)
            grid.addWidget(row.dot, i, 0)
            grid.addWidget(row.name, i, 1)
            grid.addWidget(row.state, i, 2)
            grid.addWidget(row.button, i, 3)
            row.button.clicked.connect(lambda _=False, c=cid: self.toggle(c))
            row.show(st)
            self.rows[cid] = row
        grid.setColumnStretch(2, 1)
        outer.addLayout(grid)
        buttons = QHBoxLayout()
        self.record_all = QPushButton("Record all")
        self.record_all.setObjectName("record-all")
        self.stop_all = QPushButton("Stop all")
        self.stop_all.setObjectName("stop-all")
        self.record_all.clicked.connect(lambda: self.set_all(True))
        self.stop_all.clicked.connect(lambda: self.set_all(False))
        buttons.addWidget(self.record_all)
        buttons.addWidget(self.stop_all)
        outer.addLayout(buttons)
        self.message = QLabel()
        self.message.setWordWrap(True)
        outer.addWidget(self.message)
        outer.addStretch(1)
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop)
        bridge.statusChanged.connect(self._status_changed)
        bridge.commandFailed.connect(self._command_failed)

    def toggle(self, camera_id: str) -> None:
        row = self.rows[camera_id]
        on = row.view is None or row.view.button == "Record"
        self._request(camera_id, on)

    def set_all(self, on: bool) -> None:
        for cid, row in self.rows.items():
            st = self._bridge.status(cid)
            if st.recording_wanted != on and row.pending is None:
                self._request(cid, on)

    def _request(self, camera_id: str, on: bool) -> None:
        row = self.rows[camera_id]
        row.pending = on
        row.show(self._bridge.status(camera_id))
        self._bridge.set_recording(camera_id, on)

    def _status_changed(self, status: CameraStatus) -> None:
        row = self.rows.get(status.camera_id)
        if row is not None:
            row.show(status)

    def _command_failed(self, camera_id: str, message: str) -> None:
        row = self.rows.get(camera_id)
        if row is not None:
            row.pending = None
            row.show(self._bridge.status(camera_id))
        self.message.setText(f"{camera_id}: {message}")

    def refresh(self, statuses: dict[str, CameraStatus]) -> None:
        for cid, row in self.rows.items():
            st = statuses.get(cid)
            if st is not None:
                row.show(st)
