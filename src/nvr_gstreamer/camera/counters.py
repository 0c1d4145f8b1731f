"""What a camera delivered, folded over pipeline generations; rates over a short window.

Pure: a pipeline's counters start at zero with each generation, the camera's totals do not.
"""

from __future__ import annotations

from collections import deque

RATE_WINDOW_S = 2.0


class StreamCounters:
    def __init__(self, rate_window_s: float = RATE_WINDOW_S) -> None:
        self._window_s = rate_window_s
        self.frames = 0
        self.bytes = 0
        self.rtp_lost = 0
        self.rtp_late = 0
        self._seen = (0, 0)  # (buffers, bytes) of the current generation at the last fold
        self._rtp_seen = (0, 0)  # (lost, late) likewise
        self._samples: deque[tuple[float, int, int]] = deque()

    def new_generation(self) -> None:
        """A new pipeline: its counters start from zero."""
        self._seen = (0, 0)
        self._rtp_seen = (0, 0)

    def fold(self, buffers: int, nbytes: int, lost: int, late: int) -> bool:
        """Take in the current generation's counters; True when frames arrived since the last."""
        self.rtp_lost += max(0, lost - self._rtp_seen[0])
        self.rtp_late += max(0, late - self._rtp_seen[1])
        self._rtp_seen = (lost, late)
        d_frames, d_bytes = buffers - self._seen[0], nbytes - self._seen[1]
        self._seen = (buffers, nbytes)
        self.frames += max(0, d_frames)
        self.bytes += max(0, d_bytes)
        return d_frames > 0

    def sample(self, now: float) -> None:
        """Remember the totals at ``now`` for :meth:`rates`."""
        self._samples.append((now, self.frames, self.bytes))
        while self._samples and now - self._samples[0][0] > self._window_s:
            self._samples.popleft()

    def rates(self) -> tuple[float, float]:
        """(frames per second, bits per second) over the window; zero without two samples."""
        if len(self._samples) < 2:
            return 0.0, 0.0
        (t0, f0, b0), (t1, f1, b1) = self._samples[0], self._samples[-1]
        span = t1 - t0
        if span <= 0:
            return 0.0, 0.0
        return (f1 - f0) / span, (b1 - b0) * 8 / span
