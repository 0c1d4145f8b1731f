"""The one clock seam. Logic asks the clock it was given; it never calls time itself.

Monotonic seconds for intervals and deadlines; UTC wall time only for labels and catalog rows.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes back."""
        ...

    def wall(self) -> datetime:
        """Current UTC time, timezone-aware."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to: tests of hours of reconnects run in milliseconds."""

    def __init__(self, start_wall: datetime | None = None, start_monotonic: float = 1000.0) -> None:
        self._mono = start_monotonic
        self._wall = start_wall or datetime(2026, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> datetime:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock never goes back")
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)
