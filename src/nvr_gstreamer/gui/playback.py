"""Playback: a camera and a day, the timeline of segments and gaps, a player and MP4 export.

The timeline paints segments green and each gap in the colour of its reason (hover for the
reason). Clicking plays from that point; a run of segments plays as one stream
(:class:`~nvr_gstreamer.gst.footage.Player`, on its own loop thread), so a boundary between
files shows no jump, and at the end of a run the next one starts. Export copies the chosen
range into one MP4 on a worker thread and shows its progress.

Longer than ~300 lines: the timeline widget, the player view and export share one view's state;
the pure parts live in storage/footage_runs.py.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from PySide6.QtCore import QDate, QDateTime, QObject, QRect, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from nvr_gstreamer.camera.media import LiveFrame
from nvr_gstreamer.gst.footage import ExportError, ExportResult, Player, export_mp4
from nvr_gstreamer.gst.loop import GstLoop
from nvr_gstreamer.gui.bridge import FrameMailbox
from nvr_gstreamer.gui.tile import VideoSurface
from nvr_gstreamer.storage.catalog import GapReason, Timeline
from nvr_gstreamer.storage.event_store import EventRow
from nvr_gstreamer.storage.footage_runs import Footage, Part, closed_parts, runs
from nvr_gstreamer.storage.matroska import track_layout
from nvr_gstreamer.storage.service import StorageService
from nvr_gstreamer.storage.timeline import day_bounds

logger = logging.getLogger(__name__)

GAP_COLORS = {
    GapReason.CAMERA_DOWN: QColor(200, 40, 40),
    GapReason.RECORDING_OFF: QColor(120, 120, 120),
    GapReason.STORAGE_UNAVAILABLE: QColor(140, 60, 170),
    GapReason.DISK_FULL: QColor(220, 120, 0),
    GapReason.NVR_STOPPED: QColor(60, 60, 60),
    GapReason.NO_MOTION: QColor(70, 90, 110),
    GapReason.FAILOVER: QColor(170, 30, 110),
}
GAP_TEXT = {
    GapReason.CAMERA_DOWN: "camera down",
    GapReason.RECORDING_OFF: "recording switched off",
    GapReason.STORAGE_UNAVAILABLE: "storage unavailable",
    GapReason.DISK_FULL: "disk full",
    GapReason.NVR_STOPPED: "recorder not running",
    GapReason.NO_MOTION: "no motion (recording on events only)",
    GapReason.FAILOVER: "recorder node lost, camera moved to another node",
}
SEGMENT_COLOR = QColor(40, 160, 70)
EVENT_COLOR = QColor(240, 160, 32)


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


@functools.lru_cache(maxsize=8192)
def _tracks_of(path: Path) -> object:
    """A closed segment's tracks (its header alone, ~1 KB read); files never change them."""
    return track_layout(path, 16 * 1024)


class TimelineBar(QWidget):
    """Segments and gaps of one camera's day; click to play from a point."""

    seekRequested = Signal(float)  # wall time
    eventHovered = Signal(object)  # the EventRow under the pointer, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeline")
        self.setMinimumHeight(44)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.timeline: Timeline | None = None
        self.events: list[EventRow] = []
        self.view = (0.0, 1.0)
        self.playhead: float | None = None
        self._hovered: EventRow | None = None

    def set_timeline(
        self, timeline: Timeline, view: tuple[float, float], events: Sequence[EventRow] = ()
    ) -> None:
        self.timeline = timeline
        self.events = list(events)
        self.view = view
        self.update()

    def event_at(self, x: int) -> EventRow | None:
        """The motion event drawn at ``x`` (markers are at least 3 px wide)."""
        if self.timeline is None:
            return None
        for e in self.events:
            x0 = self.x_of(e.start_utc)
            x1 = max(x0 + 3, self.x_of(e.end_utc or self.timeline.end_utc))
            if x0 <= x <= x1:
                return e
        return None

    def set_playhead(self, wall: float | None) -> None:
        self.playhead = wall
        self.update()

    def x_of(self, wall: float) -> int:
        a, b = self.view
        return round((wall - a) / (b - a) * self.width())

    def wall_at(self, x: int) -> float:
        a, b = self.view
        return a + (b - a) * max(0, min(x, self.width())) / max(1, self.width())

    def describe(self, wall: float) -> str:
        tl = self.timeline
        if tl is None:
            return ""
        event = self.event_at(self.x_of(wall))
        if event is not None:
            until = _hms(event.end_utc) if event.end_utc is not None else "now"
            share = f"{event.score * 100:.1f} % of the picture"
            return f"motion {_hms(event.start_utc)}–{until} ({share})"
        for s in tl.segments:
            end = s.end_utc if s.end_utc is not None else tl.end_utc
            if s.start_utc <= wall < end:
                return f"recorded {_hms(s.start_utc)}–{_hms(end)}"
        for g in tl.gaps:
            if g.start_utc <= wall < g.end_utc:
                return f"gap {_hms(g.start_utc)}–{_hms(g.end_utc)}: {GAP_TEXT[g.reason]}"
        return ""

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        h = self.height()
        bar = QRect(0, 0, self.width(), h - 14)
        p.fillRect(self.rect(), QColor(30, 30, 30))
        tl = self.timeline
        if tl is not None:
            for g in tl.gaps:
                x0, x1 = self.x_of(g.start_utc), self.x_of(g.end_utc)
                p.fillRect(QRect(x0, 0, max(1, x1 - x0), bar.height()), GAP_COLORS[g.reason])
            for s in tl.segments:
                end = s.end_utc if s.end_utc is not None else tl.end_utc
                x0, x1 = self.x_of(s.start_utc), self.x_of(end)
                p.fillRect(QRect(x0, 4, max(1, x1 - x0), bar.height() - 8), SEGMENT_COLOR)
            for e in self.events:
                x0, x1 = self.x_of(e.start_utc), self.x_of(e.end_utc or tl.end_utc)
                p.fillRect(QRect(x0, 0, max(3, x1 - x0), bar.height() // 3), EVENT_COLOR)
        p.setPen(QColor(200, 200, 200))
        a, b = self.view
        for i in range(5):
            t = a + (b - a) * i / 4
            x = self.x_of(t)
            align = Qt.AlignmentFlag.AlignLeft if i == 0 else Qt.AlignmentFlag.AlignRight
            if 0 < i < 4:
                align = Qt.AlignmentFlag.AlignHCenter
            p.drawText(QRect(x - 40 if i else 0, h - 14, 80, 14), align, _hms(t))
        if self.playhead is not None:
            x = self.x_of(self.playhead)
            p.setPen(QColor(255, 255, 255))
            p.drawLine(x, 0, x, bar.height())
        p.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        motion = self.event_at(int(event.position().x()))
        if motion != self._hovered:
            self._hovered = motion
            self.eventHovered.emit(motion)
        text = self.describe(self.wall_at(int(event.position().x())))
        if text:
            QToolTip.showText(event.globalPosition().toPoint(), text, self)
        else:
            QToolTip.hideText()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            x = int(event.position().x())
            motion = self.event_at(x)
            # A motion event plays from a second before its first motion.
            self.seekRequested.emit(motion.start_utc - 1 if motion else self.wall_at(x))


class PlayerSignals(QObject):
    """Player callbacks (loop and streaming threads) → queued signals."""

    frameReady = Signal()
    position = Signal(float, bool)
    ended = Signal()
    failed = Signal(str)
    exportProgress = Signal(float)
    exportDone = Signal(object)  # ExportResult | str (an error)
    dayLoaded = Signal(int, object)  # request number, _Day
    thumbnailLoaded = Signal(int, object)  # event id, JPEG bytes or None


@dataclass
class _Loaded:
    camera: str
    timeline: Timeline
    runs: list[Footage]
    events: list[EventRow]


@dataclass(frozen=True, slots=True)
class _Day:
    """A day read from the catalog and the files' headers, off the GUI thread."""

    loaded: _Loaded
    parts: list[Part]


def _read_day(storage: StorageService, camera_id: str, start: float, end: float) -> _Day:
    """Catalog reads and file headers: never on the GUI thread (the storage worker holds the
    catalog's lock during its commits)."""
    tl = storage.timeline(camera_id, start, end)
    parts = closed_parts(tl.segments, storage.root)
    events = storage.events.events(camera_id, start, end)
    return _Day(_Loaded(camera_id, tl, runs(parts, layout_of=_tracks_of), events), parts)


def _closed_parts(storage: StorageService, camera_id: str, start: float, end: float) -> list[Part]:
    return closed_parts(storage.catalog.segments(camera_id, start, end), storage.root)


class PlaybackView(QWidget):
    def __init__(
        self, storage: StorageService, camera_names: dict[str, str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("playback")
        self._storage = storage
        self._signals = PlayerSignals(self)
        self._mailbox = FrameMailbox()
        self._loop: GstLoop | None = None
        self._player: Player | None = None
        self._loaded: _Loaded | None = None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nvr-day-reader")
        self._requests = 0  # the newest day asked for; older answers are dropped
        self._shown = 0  # the request whose day is shown
        self._run_index = 0
        self.position_wall: float | None = None
        self.playing = False
        self._export_cancel: threading.Event | None = None
        self.last_export: ExportResult | str | None = None

        self.camera = QComboBox()
        self.camera.setObjectName("playback-camera")
        for cid, name in camera_names.items():
            self.camera.addItem(f"{name} ({cid})", cid)
        self.day = QDateEdit(QDate.currentDate())
        self.day.setCalendarPopup(True)
        self.day.setDisplayFormat("yyyy-MM-dd")
        load = QPushButton("Show")
        load.clicked.connect(self.load)
        self.camera.currentIndexChanged.connect(lambda _i: self.load())
        self.day.dateChanged.connect(lambda _d: self.load())
        self.whole_day = QPushButton("Whole day")
        self.whole_day.setCheckable(True)
        self.whole_day.toggled.connect(lambda _on: self._apply_view())
        top = QHBoxLayout()
        top_widgets: tuple[QWidget, ...] = (
            QLabel("Camera"), self.camera, QLabel("Day"), self.day, load, self.whole_day
        )  # fmt: skip
        for w in top_widgets:
            top.addWidget(w)
        top.addStretch(1)

        self.video = VideoSurface()
        self.video.setObjectName("playback-video")
        self.timeline = TimelineBar()
        self.timeline.seekRequested.connect(self.play_from)
        self.play_button = QPushButton("Play")
        self.play_button.setObjectName("play")
        self.play_button.clicked.connect(self.toggle_play)
        self.where = QLabel("choose a camera and a day")
        self.where.setObjectName("playback-position")
        # A motion event's peak frame, while the pointer is over its mark on the timeline.
        self.event_picture = QLabel()
        self.event_picture.setObjectName("event-picture")
        self.event_picture.setFixedHeight(90)
        self.event_picture.hide()
        self.shown_event: int | None = None
        self._wanted_event: int | None = None
        self._thumbnails: dict[int, QPixmap] = {}
        self.timeline.eventHovered.connect(self._event_hovered)
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.where, 1)
        controls.addWidget(self.event_picture)

        self.export_from = QDateTimeEdit()
        self.export_to = QDateTimeEdit()
        for edit in (self.export_from, self.export_to):
            edit.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        self.export_button = QPushButton("Export MP4…")
        self.export_button.setObjectName("export")
        self.export_button.clicked.connect(self._export_clicked)
        self.export_progress = QProgressBar()
        self.export_progress.setObjectName("export-progress")
        self.export_progress.setRange(0, 100)
        self.export_status = QLabel()
        self.export_status.setObjectName("export-status")
        export_row = QHBoxLayout()
        export_widgets: tuple[QWidget, ...] = (
            QLabel("Export from"), self.export_from, QLabel("to"), self.export_to,
            self.export_button,
        )  # fmt: skip
        for w in export_widgets:
            export_row.addWidget(w)
        export_row.addWidget(self.export_progress, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.video, 1)
        layout.addLayout(controls)
        layout.addWidget(self.timeline)
        layout.addLayout(export_row)
        layout.addWidget(self.export_status)

        self._signals.frameReady.connect(self._frame_ready)
        self._signals.position.connect(self._position)
        self._signals.ended.connect(self._ended)
        self._signals.failed.connect(self._failed)
        self._signals.exportProgress.connect(
            lambda f: self.export_progress.setValue(round(f * 100))
        )
        self._signals.exportDone.connect(self._export_done)
        self._signals.dayLoaded.connect(self._day_loaded)
        self._signals.thumbnailLoaded.connect(self._thumbnail_loaded)

    # ---- motion events ----------------------------------------------------------------------

    def _event_hovered(self, event: EventRow | None) -> None:
        self._wanted_event = event.id if event is not None else None
        if event is None or not event.has_thumbnail:
            self.event_picture.hide()
            self.shown_event = None
            return
        if event.id in self._thumbnails:
            self._show_thumbnail(event.id)
            return
        storage, signals, event_id = self._storage, self._signals, event.id

        def read() -> None:  # the catalog: never on the GUI thread
            try:
                jpeg = storage.events.thumbnail(event_id)
            except Exception as e:  # a catalog on a drive that went away
                logger.warning("event %d: no thumbnail: %s", event_id, e)
                jpeg = None
            signals.thumbnailLoaded.emit(event_id, jpeg)

        self._reader.submit(read)

    def _thumbnail_loaded(self, event_id: int, jpeg: bytes | None) -> None:
        pixmap = QPixmap()
        if jpeg is None or not pixmap.loadFromData(jpeg):
            return
        self._thumbnails[event_id] = pixmap.scaledToHeight(
            self.event_picture.height(), Qt.TransformationMode.SmoothTransformation
        )
        if self._wanted_event == event_id:
            self._show_thumbnail(event_id)

    def _show_thumbnail(self, event_id: int) -> None:
        self.event_picture.setPixmap(self._thumbnails[event_id])
        self.event_picture.show()
        self.shown_event = event_id

    # ---- loading a day --------------------------------------------------------------------

    def camera_id(self) -> str:
        return str(self.camera.currentData())

    def select(self, camera_id: str, day: date) -> None:
        self.camera.blockSignals(True)
        self.day.blockSignals(True)
        self.camera.setCurrentIndex(self.camera.findData(camera_id))
        self.day.setDate(QDate(day.year, day.month, day.day))
        self.camera.blockSignals(False)
        self.day.blockSignals(False)
        self.load()

    def load(self) -> None:
        """Read the chosen day on a worker; it is shown when it arrives (:meth:`loading`)."""
        cid = self.camera_id()
        qd = self.day.date()
        start, end = day_bounds(date(qd.year(), qd.month(), qd.day()))
        self._requests += 1
        number, storage, sig = self._requests, self._storage, self._signals
        self.where.setText("loading…")

        def read() -> None:
            try:
                day: _Day | str = _read_day(storage, cid, start, end)
            except Exception as exc:
                logger.exception("reading the day failed")
                day = f"cannot read the recordings: {exc}"
            sig.dayLoaded.emit(number, day)

        self._reader.submit(read)

    def loading(self) -> bool:
        """Whether the day last asked for is still being read."""
        return self._shown != self._requests

    def _day_loaded(self, number: int, day: _Day | str) -> None:
        if number != self._requests:
            return  # an older request: another day was chosen meanwhile
        self._shown = number
        if isinstance(day, str):
            self.where.setText(day)
            return
        tl, parts = day.loaded.timeline, day.parts
        self._stop_player()
        self._loaded = day.loaded
        self._apply_view()
        n = len(parts)
        self.where.setText(
            f"{n} segment{'s' if n != 1 else ''}, {len(tl.gaps)} gap"
            f"{'s' if len(tl.gaps) != 1 else ''}: click the timeline to play"
            if n
            else "nothing recorded that day"
        )
        if parts:
            first = parts[0].start_utc
            self.export_from.setDateTime(QDateTime.fromSecsSinceEpoch(int(first)))
            last = min(first + 60, parts[-1].end_utc)
            self.export_to.setDateTime(QDateTime.fromSecsSinceEpoch(int(last)))

    def _apply_view(self) -> None:
        if self._loaded is None:
            return
        tl = self._loaded.timeline
        view = (tl.start_utc, tl.end_utc)
        segs = tl.segments
        if segs and not self.whole_day.isChecked():
            a = segs[0].start_utc
            b = max((s.end_utc or s.start_utc) for s in segs)
            pad = max(5.0, (b - a) * 0.05)
            view = (max(tl.start_utc, a - pad), min(tl.end_utc, b + pad))
        self.timeline.set_timeline(tl, view, self._loaded.events)

    # ---- playing --------------------------------------------------------------------------

    def _ensure_player(self) -> Player:
        if self._player is None:
            self._loop = GstLoop("nvr-playback")
            self._loop.start()
            sig = self._signals
            self._player = Player(
                self._loop,
                on_frame=self._on_frame,
                on_position=lambda off, playing: sig.position.emit(off, playing),
                on_end=sig.ended.emit,
                on_error=sig.failed.emit,
            )
        return self._player

    def _on_frame(self, frame: LiveFrame) -> None:  # streaming thread
        if self._mailbox.post(frame):
            self._signals.frameReady.emit()

    def play_from(self, wall: float) -> None:
        loaded = self._loaded
        if loaded is None or not loaded.runs:
            return
        index = next(
            (i for i, r in enumerate(loaded.runs) if wall < r.end_utc), len(loaded.runs) - 1
        )
        self._run_index = index
        footage = loaded.runs[index]
        self.playing = True
        self.play_button.setText("Pause")
        self.position_wall = max(wall, footage.start_utc)
        self.timeline.set_playhead(self.position_wall)
        self._ensure_player().open(
            loaded.camera, footage, footage.offset_of(max(wall, footage.start_utc)), True
        )

    def toggle_play(self) -> None:
        if self._player is None or self._loaded is None:
            if self._loaded is not None and self._loaded.runs:
                self.play_from(self._loaded.runs[0].start_utc)
            return
        self.playing = not self.playing
        self.play_button.setText("Pause" if self.playing else "Play")
        if self.playing:
            self._player.play()
        else:
            self._player.pause()

    def _frame_ready(self) -> None:
        frame = self._mailbox.take(self._loaded.camera if self._loaded else "")
        if frame is not None:
            self.video.show_frame(frame)

    def _position(self, offset: float, playing: bool) -> None:
        if self._loaded is None:
            return
        footage = self._loaded.runs[self._run_index]
        self.position_wall = footage.wall_of(offset)
        self.timeline.set_playhead(self.position_wall)
        when = datetime.fromtimestamp(self.position_wall).strftime("%Y-%m-%d %H:%M:%S")
        self.where.setText(f"{when}{'' if playing else ' (paused)'}")

    def _ended(self) -> None:
        loaded = self._loaded
        if loaded is not None and self._run_index + 1 < len(loaded.runs):
            self.play_from(loaded.runs[self._run_index + 1].start_utc)  # across the gap
            return
        self.playing = False
        self.play_button.setText("Play")
        self.where.setText("end of the recordings")

    def _failed(self, message: str) -> None:
        self.playing = False
        self.play_button.setText("Play")
        self.where.setText(f"playback failed: {message}")

    def _stop_player(self) -> None:
        if self._player is not None:
            self._player.close()
        self.playing = False
        self.play_button.setText("Play")
        self.video.clear()

    # ---- export ---------------------------------------------------------------------------

    def _export_clicked(self) -> None:
        start = self.export_from.dateTime().toSecsSinceEpoch()
        end = self.export_to.dateTime().toSecsSinceEpoch()
        suggested = f"{self.camera_id()}_{datetime.fromtimestamp(start):%Y%m%d_%H%M%S}.mp4"
        path, _filter = QFileDialog.getSaveFileName(
            self, "Export to MP4", str(Path.home() / suggested), "MP4 video (*.mp4)"
        )
        if path:
            self.export(Path(path), float(start), float(end))

    def export(self, dest: Path, start_utc: float, end_utc: float) -> None:
        """Export on a worker thread; progress and the result come back as signals."""
        if self._export_cancel is not None:
            self.export_status.setText("an export is already running")
            return
        cid, storage = self.camera_id(), self._storage
        cancel = threading.Event()
        self._export_cancel = cancel
        self.export_button.setEnabled(False)
        self.export_progress.setValue(0)
        self.export_status.setText(f"exporting {_hms(start_utc)}–{_hms(end_utc)} to {dest}…")
        sig = self._signals

        def run() -> None:
            try:
                parts = _closed_parts(storage, cid, start_utc, end_utc)
                result: ExportResult | str = (
                    export_mp4(
                        Footage(parts), start_utc, end_utc, dest, sig.exportProgress.emit, cancel
                    )
                    if parts
                    else "nothing was recorded in that range"
                )
            except ExportError as exc:
                result = str(exc)
            except Exception as exc:
                logger.exception("export failed")
                result = f"export failed: {exc}"
            sig.exportDone.emit(result)

        threading.Thread(target=run, name="nvr-export", daemon=True).start()

    def _export_done(self, result: ExportResult | str) -> None:
        self._export_cancel = None
        self.export_button.setEnabled(True)
        self.last_export = result
        if isinstance(result, str):
            self.export_status.setText(result)
            return
        self.export_progress.setValue(100)
        self.export_status.setText(
            f"exported {result.duration_s:.1f} s to {result.path}, from {_hms(result.start_utc)}"
        )

    def exporting(self) -> bool:
        return self._export_cancel is not None

    def shutdown(self) -> None:
        """The window closes: stop playback, and the day reader (GUI thread)."""
        self.close_player()
        self._reader.shutdown(wait=False, cancel_futures=True)

    def close_player(self) -> None:
        """Stop playback and its loop; cancel an export (GUI thread, at shutdown)."""
        if self._export_cancel is not None:
            self._export_cancel.set()
        if self._player is not None:
            self._player.close()
            self._player = None
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
