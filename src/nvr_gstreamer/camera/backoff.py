"""Reconnect backoff as a value: initial, factor, cap, jitter, reset, retry limit."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 5.0
    factor: float = 2.0
    cap_s: float = 60.0
    jitter: float = 0.1  # each delay is scaled by a factor drawn from [1 - jitter, 1 + jitter]
    reset_after_s: float = 30.0  # streaming this long makes the next outage start again at initial
    max_retries: int = 0  # 0 = never give up

    def base_delay(self, failures: int) -> float:
        """Delay before the retry that follows the ``failures``-th consecutive failure (1-based)."""
        n = max(1, failures)
        return min(self.initial_s * self.factor ** (n - 1), self.cap_s)

    def delay(self, failures: int, rng: random.Random) -> float:
        spread = self.jitter * (2.0 * rng.random() - 1.0)
        return self.base_delay(failures) * (1.0 + spread)

    def cap_delay(self, rng: random.Random) -> float:
        """Delay for permanent faults (unauthorized, not found): always the cap."""
        return self.cap_s * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))

    def gives_up(self, attempts: int) -> bool:
        return self.max_retries > 0 and attempts >= self.max_retries
