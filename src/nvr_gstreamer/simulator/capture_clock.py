"""Frame timestamps at the camera's capture cadence, not at the moment a frame reached its media.

A real camera stamps a frame when its sensor captures it: frame ``n`` and ``n + 1`` are one
frame interval apart in the RTP timestamps, however late the network or the camera's CPU then
delivers them. The simulator's RTSP media stamp frames on arrival (``appsrc do-timestamp``),
so a moment of load on the machine (a 2-core CI runner running a browser) moves one frame by
10 ms or more, and a test that steps frame by frame sees an interval of 55 ms at 15 fps.

:class:`CaptureClock` restores the cadence per media: each frame is placed one capture interval
(taken from the shared encoder's own timestamps, so a frame the encoder dropped leaves its
interval) after the frame before it, unless it arrived earlier than that, in which case it keeps
its arrival time. So a timestamp is never later than the arrival (the media never holds a frame
back for its clock) and follows the lower envelope of the arrivals: a frame made late by load
gets its place back, and a late start is corrected by the first frame that arrives on time.
A frame later than ``max_late_ns`` beyond its place (the simulator process was stopped) starts
a new cadence from its arrival, as does a capture time that does not move forward (a new
encoder).

Pure: no GStreamer, times in nanoseconds of the media's running time and the encoder's.
"""

from __future__ import annotations

MAX_LATE_NS = 500_000_000
"""A frame arriving more than this after its place starts a new cadence (500 ms: beyond load)."""


class CaptureClock:
    """Timestamps for one media's frames: at the capture cadence, never after arrival."""

    __slots__ = ("_last", "_max_late_ns")

    def __init__(self, max_late_ns: int = MAX_LATE_NS) -> None:
        self._max_late_ns = max_late_ns
        self._last: tuple[int, int] | None = None
        """The last frame's timestamp and capture time (ns)."""

    def stamp(self, arrival_ns: int, capture_ns: int) -> int:
        """The timestamp for a frame captured at ``capture_ns`` (encoder time) that arrived at
        ``arrival_ns`` (the media's running time)."""
        pts = arrival_ns
        if self._last is not None and capture_ns > self._last[1]:
            place = self._last[0] + (capture_ns - self._last[1])
            if arrival_ns - place <= self._max_late_ns:
                pts = min(arrival_ns, place)
        self._last = (pts, capture_ns)
        return pts
