"""``nvr gui``: the engine in-process and the main window; closing it finalises every file."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from nvr_gstreamer.app import NvrApp
from nvr_gstreamer.config import ConfigError, load_config

logger = logging.getLogger(__name__)


class _Starter(QObject):
    started = Signal(object)  # None, or the error text


def _interactive() -> bool:
    """A person can answer a dialog (not the offscreen or minimal platform of tests and CI)."""
    return QApplication.platformName() not in ("offscreen", "minimal")


def _error(title: str, message: str) -> None:
    print(f"nvr gui: {message}", file=sys.stderr)
    if _interactive():
        QMessageBox.critical(None, f"nvr_gstreamer: {title}", message)


def run_gui(
    config_path: str | None, demo_output: str = "demo-recordings", demo: bool = False
) -> int:
    qt = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(qt, QApplication)
    qt.setApplicationName("nvr_gstreamer")
    with ExitStack() as stack:
        if config_path is None:
            if not demo and _interactive():
                answer = QMessageBox.question(
                    None,
                    "nvr_gstreamer",
                    "No config file was given (nvr gui -c CONFIG).\n\n"
                    "Start four simulated demo cameras, recorded into "
                    f"./{demo_output}?",
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                )
                demo = answer == QMessageBox.StandardButton.Yes
            if not demo:
                print(
                    "nvr gui: no config; run `nvr gui -c CONFIG`, or `nvr gui --demo` for "
                    "simulated cameras",
                    file=sys.stderr,
                )
                return 2
            from nvr_gstreamer.demo import demo_config
            from nvr_gstreamer.simulator.process import SimulatorProcess

            sim = stack.enter_context(SimulatorProcess(cameras=4))
            config = demo_config(
                {n: sim.url(n) for n in sim.camera_names}, Path(demo_output).resolve()
            )
        else:
            try:
                config = load_config(Path(config_path))
            except ConfigError as exc:
                _error("config", str(exc))
                return 1
        try:
            nvr = NvrApp(config)
        except OSError as exc:
            _error(
                "storage", f"cannot use storage folder {config.storage.path}: {exc.strerror or exc}"
            )
            return 1
        return _run_window(qt, nvr)
    return 0


def _run_window(qt: QApplication, nvr: NvrApp) -> int:
    from nvr_gstreamer.gui.window import MainWindow

    splash = QLabel("Starting: checking recordings, connecting cameras…")
    splash.setMargin(24)
    splash.show()
    starter = _Starter()
    holder: dict[str, MainWindow] = {}

    def start() -> None:  # worker thread: recovery and GStreamer set-up stay off the GUI
        try:
            nvr.start()
            starter.started.emit(None)
        except Exception as exc:
            logger.exception("start-up failed")
            starter.started.emit(str(exc))

    def started(error: object) -> None:
        splash.close()
        if error is not None:
            _error("start-up", f"start-up failed: {error}")
            qt.exit(1)
            return
        window = MainWindow(nvr, on_stopped=qt.quit)
        holder["window"] = window
        window.show()
        logger.info("desktop app: window open with %d cameras", len(nvr.engine.runtimes))

    starter.started.connect(started)
    threading.Thread(target=start, name="nvr-gui-start", daemon=True).start()

    # Ctrl-C / SIGTERM close the window like the user would (files finalised first).
    def on_signal(_signum: int, _frame: object) -> None:
        w = holder.get("window")
        if w is not None:
            w.close()
        else:
            qt.exit(130)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    tick = QTimer()
    tick.timeout.connect(lambda: None)  # lets Python run its signal handlers
    tick.start(200)
    return int(qt.exec())
