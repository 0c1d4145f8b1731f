"""One camera's tile: live video scaled to fit, name, clock, state badge, red recording dot,
an orange "motion" label while a motion event goes on."""

from __future__ import annotations

import time
from datetime import datetime

from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from nvr_gstreamer.camera.media import LiveFrame
from nvr_gstreamer.camera.status import CameraStatus
from nvr_gstreamer.gui.badges import Badge, Tone, badge, storage_badge, stream_summary
from nvr_gstreamer.gui.threads import on_gui_thread

TONE_COLORS = {
    Tone.OK: QColor(30, 140, 60),
    Tone.BUSY: QColor(200, 130, 0),
    Tone.BAD: QColor(190, 30, 30),
    Tone.OFF: QColor(90, 90, 90),
}


def frame_image(frame: LiveFrame) -> QImage:
    """A QImage that owns a copy of the frame's pixels (rows may be padded to 4 bytes)."""
    stride = len(frame.data) // frame.height if frame.height else frame.width * 3
    img = QImage(frame.data, frame.width, frame.height, stride, QImage.Format.Format_RGB888)
    return img.copy()


class VideoSurface(QWidget):
    """Paints the latest image scaled to fit (letterboxed) and lets subclasses draw over it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.frames_shown = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 90)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def show_frame(self, frame: LiveFrame) -> None:
        assert on_gui_thread()
        self.image = frame_image(frame)
        self.frames_shown += 1
        self.update()

    def clear(self) -> None:
        self.image = None
        self.update()

    def video_rect(self) -> QRect:
        if self.image is None or self.image.isNull():
            return self.rect()
        size = self.image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) // 2
        y = (self.height() - size.height()) // 2
        return QRect(QPoint(x, y), size)

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        if self.image is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(self.video_rect(), self.image)
        self.paint_overlay(p)
        p.end()

    def paint_overlay(self, p: QPainter) -> None:
        pass


def _pill(p: QPainter, x: int, y: int, text: str, color: QColor, right: bool = False) -> int:
    """A rounded label; returns its height."""
    fm = p.fontMetrics()
    w = fm.horizontalAdvance(text) + 12
    h = fm.height() + 4
    if right:
        x -= w
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(color)
    p.drawRoundedRect(QRect(x, y, w, h), 4, 4)
    p.setPen(QColor(255, 255, 255))
    p.drawText(QRect(x, y, w, h), Qt.AlignmentFlag.AlignCenter, text)
    return h


class CameraTile(VideoSurface):
    doubleClicked = Signal(str)
    visibilityChanged = Signal(str, bool)

    def __init__(self, camera_id: str, status: CameraStatus, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.camera_id = camera_id
        self.setObjectName(f"tile-{camera_id}")
        self._status = status
        self._status_at = time.monotonic()
        self._set_tooltip()

    # ---- state ----------------------------------------------------------------------------

    @property
    def status(self) -> CameraStatus:
        return self._status

    def set_status(self, status: CameraStatus) -> None:
        assert on_gui_thread()
        changed = status != self._status
        self._status = status
        self._status_at = time.monotonic()
        if changed:
            self._set_tooltip()
            self.update()

    def _set_tooltip(self) -> None:
        s = self._status
        self.setToolTip(
            f"{s.name} ({self.camera_id}): {stream_summary(s)}\ndouble-click for a single camera"
        )

    def badge(self) -> Badge:
        return badge(self._status, time.monotonic() - self._status_at)

    def badge_text(self) -> str:
        return self.badge().text

    def recording_dot(self) -> bool:
        return self._status.recording

    def motion_shown(self) -> bool:
        return bool(self._status.motion)

    # ---- Qt -------------------------------------------------------------------------------

    def showEvent(self, event: object) -> None:  # type: ignore[override]
        self.visibilityChanged.emit(self.camera_id, True)

    def hideEvent(self, event: object) -> None:  # type: ignore[override]
        self.visibilityChanged.emit(self.camera_id, False)

    def mouseDoubleClickEvent(self, event: object) -> None:  # type: ignore[override]
        self.doubleClicked.emit(self.camera_id)

    def paint_overlay(self, p: QPainter) -> None:
        font = QFont(p.font())
        font.setPointSize(max(8, min(12, self.height() // 28)))
        p.setFont(font)
        m = 6
        name_h = _pill(p, m, m, self._status.name, QColor(0, 0, 0, 160))
        if self._status.motion:
            _pill(p, m, m + name_h + 4, "motion", QColor(220, 140, 20, 220))
        _pill(
            p, self.width() - m, m, datetime.now().strftime("%H:%M:%S"), QColor(0, 0, 0, 160), True
        )
        b = self.badge()
        y = self.height() - m - (p.fontMetrics().height() + 4)
        _pill(p, m, y, b.text, TONE_COLORS[b.tone])
        sb = storage_badge(self._status)
        if sb is not None:
            _pill(p, self.width() - m, y, sb.text, TONE_COLORS[sb.tone], True)
        if self._status.recording:
            r = 7
            cy = m + (p.fontMetrics().height() + 4) + 6 + r
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(230, 20, 20))
            p.drawEllipse(QPoint(self.width() - m - r, cy), r, r)
        if self.image is None:
            p.setPen(QColor(160, 160, 160))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no video")
