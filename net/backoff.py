"""Jittered exponential backoff for reconnects. Pure: the caller sleeps."""

from __future__ import annotations

import random


class Backoff:
    """Delay n (from 0) is uniform in [cap_n / 2, cap_n], cap_n = min(max_s, base_s * 2**n)."""

    def __init__(self, *, base_s: float, max_s: float, rng: random.Random) -> None:
        if not 0 < base_s <= max_s:
            raise ValueError("need 0 < base_s <= max_s")
        self.base_s = base_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng

    def next_delay_s(self) -> float:
        cap_s = min(self.max_s, self.base_s * 2 ** min(self.attempt, 62))
        self.attempt += 1
        return self._rng.uniform(cap_s / 2, cap_s)

    def reset(self) -> None:
        self.attempt = 0
