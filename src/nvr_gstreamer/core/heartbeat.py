"""Heartbeats: every loop of the program says, each time it turns, that it is alive.

A loop that stops turning (a deadlock, a call that never returns) stops beating; the watchdog
(:mod:`nvr_gstreamer.service.watchdog`) and ``/api/health`` read the ages. Pure and
thread-safe; time from the injected clock.
"""

from __future__ import annotations

import threading

from nvr_gstreamer.core.clock import Clock


class Heartbeats:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def beat(self, loop: str) -> None:
        """``loop`` turned just now (from that loop's own thread)."""
        now = self._clock.monotonic()
        with self._lock:
            self._last[loop] = now

    def forget(self, loop: str) -> None:
        """``loop`` ended on purpose (shutting down): it is no longer watched."""
        with self._lock:
            self._last.pop(loop, None)

    def ages(self) -> dict[str, float]:
        """Seconds since each loop last turned, by name (sorted)."""
        now = self._clock.monotonic()
        with self._lock:
            return {name: max(0.0, now - t) for name, t in sorted(self._last.items())}

    def stale(self, max_age_s: float) -> list[str]:
        """The loops that have not turned for ``max_age_s`` or longer."""
        return [name for name, age in self.ages().items() if age >= max_age_s]
