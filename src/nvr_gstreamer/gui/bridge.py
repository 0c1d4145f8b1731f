"""The one place where engine threads meet Qt: everything crosses as a queued signal.

Engine listeners run on the GStreamer loop thread and viewer callbacks on streaming threads.
They never touch a widget: they emit signals of this QObject (which lives on the GUI thread),
and Qt queues the call to the GUI thread. Frames go through a one-slot mailbox per camera, so
a slow GUI drops old frames instead of queueing them. Commands that wait for the engine
(start recording, stop the app) run on a worker thread.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal

from nvr_gstreamer.camera.media import LiveFrame
from nvr_gstreamer.camera.status import CameraStatus, EngineEvent
from nvr_gstreamer.engine.engine import CameraEngine

logger = logging.getLogger(__name__)


class FrameMailbox:
    """Latest frame per camera; ``post`` says whether the reader must be woken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[str, LiveFrame] = {}

    def post(self, frame: LiveFrame) -> bool:
        with self._lock:
            wake = frame.camera_id not in self._frames
            self._frames[frame.camera_id] = frame
            return wake

    def take(self, camera_id: str) -> LiveFrame | None:
        with self._lock:
            return self._frames.pop(camera_id, None)


class EngineBridge(QObject):
    statusChanged = Signal(object)  # CameraStatus, after every state or recording change
    frameReady = Signal(str)  # camera id: take the frame with take_frame()
    commandFailed = Signal(str, str)  # camera id, message

    def __init__(self, engine: CameraEngine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._mailbox = FrameMailbox()
        self._viewers: dict[str, tuple[int, int]] = {}  # camera -> (token, watchers)
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nvr-gui-cmd")
        self._closed = False
        self._unsubscribe = engine.subscribe(self._on_event)

    # ---- engine threads -> signals --------------------------------------------------------

    def _on_event(self, event: EngineEvent) -> None:
        if not self._closed:
            self.statusChanged.emit(event.status)

    def _on_frame(self, frame: LiveFrame) -> None:
        if not self._closed and self._mailbox.post(frame):
            self.frameReady.emit(frame.camera_id)

    # ---- GUI thread -----------------------------------------------------------------------

    def camera_ids(self) -> list[str]:
        return list(self.engine.runtimes)

    def status(self, camera_id: str) -> CameraStatus:
        return self.engine.status(camera_id)

    def take_frame(self, camera_id: str) -> LiveFrame | None:
        return self._mailbox.take(camera_id)

    def watch(self, camera_id: str) -> None:
        """A tile became visible: decode this camera (shared by every visible tile)."""
        token, n = self._viewers.get(camera_id, (0, 0))
        if n == 0:
            token = self.engine.add_viewer(camera_id, self._on_frame)
        self._viewers[camera_id] = (token, n + 1)

    def unwatch(self, camera_id: str) -> None:
        token, n = self._viewers.get(camera_id, (0, 0))
        if n <= 1:
            self._viewers.pop(camera_id, None)
            if n == 1:
                self.engine.remove_viewer(camera_id, token)
        else:
            self._viewers[camera_id] = (token, n - 1)

    def set_recording(self, camera_id: str, on: bool) -> None:
        """Ask the engine; the answer comes back as a statusChanged like any other change."""

        def run() -> None:
            try:
                if on:
                    ok = self.engine.start_recording(camera_id)
                    if not ok:
                        state = self.engine.status(camera_id).storage_state
                        why = state.value if state is not None else "not configured"
                        self._fail(camera_id, f"cannot record now: storage is {why}")
                else:
                    self.engine.stop_recording(camera_id)
            except Exception as exc:  # reported, never lost on a worker
                logger.exception("[%s] recording command failed", camera_id)
                self._fail(camera_id, str(exc))
            self._emit_status(camera_id)

        self._workers.submit(run)

    def _fail(self, camera_id: str, message: str) -> None:
        if not self._closed:
            self.commandFailed.emit(camera_id, message)

    def _emit_status(self, camera_id: str) -> None:
        if not self._closed:
            self.statusChanged.emit(self.engine.status(camera_id))

    def close(self) -> None:
        """Stop delivering (GUI thread). The engine itself is stopped by its owner."""
        if self._closed:
            return
        for camera_id, (token, _n) in list(self._viewers.items()):
            self.engine.remove_viewer(camera_id, token)
        self._viewers.clear()
        self._closed = True
        self._unsubscribe()
        self._workers.shutdown(wait=False, cancel_futures=True)
