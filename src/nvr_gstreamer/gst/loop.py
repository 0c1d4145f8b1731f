"""The one GLib main context thread that owns every pipeline.

Other threads hand work to it with :meth:`GstLoop.call` (or :meth:`call_sync`); timers and bus
watches created from inside it belong to its private context, so a Qt application that
iterates the *default* context on its GUI thread never runs GStreamer work there.

Calls and timers go through one long-lived GSource (a queue and a heap of deadlines), not a
new idle or timeout source each: PyGObject 3.42 (Debian 12) never frees the libffi closure it
makes for every Python callback handed to ``set_callback`` (measured here: ~120 bytes per idle
call, ~225 per timer), which grew RSS by ~50 kB per camera reconnect.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import logging
import math
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
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
        route_glib_warnings_past_python()
        Gst.init(None)
        load_own_plugins()
        _gst_ready = True


# Where scripts/setup builds the project's own GStreamer elements (native/); NVR_GST_PLUGINS
# overrides it.
PLUGIN_DIR = Path(os.environ.get("NVR_GST_PLUGINS", Path(sys.prefix) / "lib" / "nvr-gst-plugins"))


def load_own_plugins() -> None:
    """Register the project's own elements (nvrrtpstamp) when they are built."""
    if PLUGIN_DIR.is_dir():
        Gst.Registry.get().scan_path(str(PLUGIN_DIR))


def route_glib_warnings_past_python() -> None:
    """GLib's warnings go to GLib's own handler, never through Python.

    PyGObject turns warnings of the GLib, GLib-GObject and GThread domains into Python
    warnings, so a warning logged on a streaming thread waits for the GIL — while GObject may
    hold its global signal lock, which a Python thread holding the GIL can be waiting for: a
    deadlock (seen on rtspsrc's receive path). GLib's default handler is C, and prints them.
    """
    try:
        glib = ctypes.CDLL("libglib-2.0.so.0")
    except OSError:
        return
    glib.g_log_set_handler.argtypes = [
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    glib.g_log_set_handler.restype = ctypes.c_uint
    default = ctypes.cast(glib.g_log_default_handler, ctypes.c_void_p)
    for domain in (b"GLib", b"GLib-GObject", b"GThread"):
        glib.g_log_set_handler(domain, _G_LOG_LEVEL_WARNING, default, None)


_G_LOG_LEVEL_WARNING = 1 << 4


class _Entry:
    """One scheduled call: a one-shot timer (``interval_us`` None) or a periodic one."""

    __slots__ = ("due_us", "fn", "interval_us")

    def __init__(self, due_us: int, fn: Callable[[], Any] | None, interval_us: int | None) -> None:
        self.due_us = due_us
        self.fn = fn  # None once cancelled or fired (one-shot)
        self.interval_us = interval_us


class Timer:
    """A timer on the loop; :meth:`cancel` is idempotent (call it from the loop)."""

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    def cancel(self) -> None:
        self._entry.fn = None

    @property
    def pending(self) -> bool:
        return self._entry.fn is not None


class _Dispatcher(GLib.Source):  # type: ignore[misc]
    """The loop's one source: ready when a call is queued or a timer is due."""

    def __init__(self, owner: GstLoop) -> None:
        super().__init__()
        self._owner = owner

    def prepare(self) -> tuple[bool, int]:
        return self._owner._prepare()

    def check(self) -> bool:
        return self._owner._prepare()[0]

    def dispatch(self, _callback: Any, _args: Any) -> bool:
        self._owner._dispatch()
        return True


class GstLoop:
    def __init__(self, name: str = "nvr-gst") -> None:
        init_gstreamer()
        self._context = GLib.MainContext.new()
        self._loop = GLib.MainLoop.new(self._context, False)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._lock = threading.Lock()
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._timers: list[tuple[int, int, _Entry]] = []  # heap of (due, seq, entry)
        self._seq = itertools.count()

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
        # Made, attached and destroyed on this thread only, so it never outlives the loop
        # (a custom source still attached when the interpreter exits crashes it).
        source = _Dispatcher(self)
        source.set_priority(GLib.PRIORITY_DEFAULT)
        source.attach(self._context)
        try:
            self.call(self._started.set)
            self._loop.run()
        finally:
            source.destroy()
            del source
            self._context.pop_thread_default()

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    # ---- handing work over ----------------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread, soon. Safe from any thread."""
        with self._lock:
            self._calls.append((fn, args))
        self._context.wakeup()

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
        return self._schedule(max(0, math.ceil(delay_s * 1000)) * 1000, fn, None)

    def every(self, interval_s: float, fn: Callable[[], Any]) -> Timer:
        """Call ``fn()`` every ``interval_s`` seconds until cancelled. From the loop thread only."""
        interval_us = max(1, math.ceil(interval_s * 1000)) * 1000
        return self._schedule(interval_us, fn, interval_us)

    def _schedule(self, delay_us: int, fn: Callable[[], Any], interval_us: int | None) -> Timer:
        entry = _Entry(GLib.get_monotonic_time() + delay_us, fn, interval_us)
        with self._lock:
            heapq.heappush(self._timers, (entry.due_us, next(self._seq), entry))
            if len(self._timers) > 64 and self._mostly_cancelled():
                self._timers = [t for t in self._timers if t[2].fn is not None]
                heapq.heapify(self._timers)
        self._context.wakeup()
        return Timer(entry)

    def _mostly_cancelled(self) -> bool:
        cancelled = sum(1 for t in self._timers if t[2].fn is None)
        return cancelled * 2 > len(self._timers)

    # ---- the dispatcher (loop thread) -----------------------------------------------------

    def _prepare(self) -> tuple[bool, int]:
        """(ready now, else milliseconds until the next timer or -1)."""
        with self._lock:
            if self._calls:
                return True, 0
            timers = self._timers
            while timers and timers[0][2].fn is None:
                heapq.heappop(timers)  # cancelled
            if not timers:
                return False, -1
            wait_us = timers[0][0] - GLib.get_monotonic_time()
        if wait_us <= 0:
            return True, 0
        return False, math.ceil(wait_us / 1000)

    def _dispatch(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, deque()
        for work, args in calls:
            try:
                work(*args)
            except Exception:
                logger.exception("unhandled error in %s on the GStreamer loop", work)
        now = GLib.get_monotonic_time()
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > now:
                    return
                _due, _seq, entry = heapq.heappop(self._timers)
                fn = entry.fn
                if fn is None:
                    continue
                if entry.interval_us is None:
                    entry.fn = None  # fired: no longer pending
                else:
                    entry.due_us = max(entry.due_us + entry.interval_us, now)
                    heapq.heappush(self._timers, (entry.due_us, next(self._seq), entry))
            try:
                fn()
            except Exception:
                logger.exception("unhandled error in timer %s", fn)
