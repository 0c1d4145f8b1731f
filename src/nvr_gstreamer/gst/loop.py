"""The one GLib main context thread that owns every pipeline.

Other threads hand work to it with :meth:`GstLoop.call` (or :meth:`call_sync`); timers and bus
watches created from inside it belong to its private context, so a Qt application that
iterates the *default* context on its GUI thread never runs GStreamer work there.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

logger = logging.getLogger(__name__)
T = TypeVar("T")

_gst_ready = False


def init_gstreamer() -> None:
    global _gst_ready
    if not _gst_ready:
        Gst.init(None)
        _gst_ready = True


class Timer:
    """A one-shot timer on the loop; :meth:`cancel` is idempotent (call it from the loop)."""

    def __init__(self, source: GLib.Source) -> None:
        self._source: GLib.Source | None = source

    def cancel(self) -> None:
        if self._source is not None:
            self._source.destroy()
            self._source = None

    @property
    def pending(self) -> bool:
        return self._source is not None and not self._source.is_destroyed()


class GstLoop:
    def __init__(self, name: str = "nvr-gst") -> None:
        init_gstreamer()
        self._context = GLib.MainContext.new()
        self._loop = GLib.MainLoop.new(self._context, False)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def stop(self, timeout_s: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        self.call(self._loop.quit)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        self._context.push_thread_default()
        try:
            self.call(self._started.set)
            self._loop.run()
        finally:
            self._context.pop_thread_default()

    @property
    def context(self) -> GLib.MainContext:
        return self._context

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    # ---- handing work over ----------------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread, soon. Safe from any thread."""

        def _idle_cb(*_: Any) -> bool:
            try:
                fn(*args)
            except Exception:
                logger.exception("unhandled error in %s on the GStreamer loop", fn)
            return False

        source = GLib.idle_source_new()
        source.set_callback(_idle_cb)
        source.attach(self._context)

    def call_sync(self, fn: Callable[[], T], timeout_s: float = 10.0) -> T:
        """Run ``fn()`` on the loop thread and return its result (runs inline if already there)."""
        if self.in_loop():
            return fn()
        future: Future[T] = Future()

        def _run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

        self.call(_run)
        return future.result(timeout_s)

    def timeout(self, delay_s: float, fn: Callable[[], Any]) -> Timer:
        """Call ``fn()`` once after ``delay_s`` seconds. From the loop thread only."""
        source = GLib.timeout_source_new(max(0, math.ceil(delay_s * 1000)))
        timer = Timer(source)

        def _timeout_cb(*_: Any) -> bool:
            timer._source = None
            try:
                fn()
            except Exception:
                logger.exception("unhandled error in timer %s", fn)
            return False

        source.set_callback(_timeout_cb)
        source.attach(self._context)
        return timer

    def every(self, interval_s: float, fn: Callable[[], Any]) -> Timer:
        """Call ``fn()`` every ``interval_s`` seconds until cancelled. From the loop thread only."""
        source = GLib.timeout_source_new(max(1, math.ceil(interval_s * 1000)))

        def _tick_cb(*_: Any) -> bool:
            try:
                fn()
            except Exception:
                logger.exception("unhandled error in periodic %s", fn)
            return True

        source.set_callback(_tick_cb)
        source.attach(self._context)
        return Timer(source)
