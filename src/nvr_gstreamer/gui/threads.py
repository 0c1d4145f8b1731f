"""Thread affinity in the desktop app: widgets are touched on the GUI thread only."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QThread


def on_gui_thread() -> bool:
    """Whether the caller runs on the GUI thread (``assert on_gui_thread()`` in widget code:
    engine events and frames arrive on other threads and must come over by a queued signal)."""
    app = QCoreApplication.instance()
    return app is None or QThread.currentThread() is app.thread()
