"""Per-client limits: a token bucket for message rate, counts for connections. Pure.

The clock is an argument so the limits are testable without sleeping.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["ConnectionCounter", "TokenBucket"]


class TokenBucket:
    """``rate_per_s`` messages per second on average, bursts up to ``burst``."""

    __slots__ = ("_last", "_tokens", "burst", "rate_per_s")

    def __init__(self, *, rate_per_s: float, burst: int, now: float) -> None:
        self.rate_per_s, self.burst = rate_per_s, burst
        self._tokens = float(burst)
        self._last = now

    def take(self, *, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; False means over the limit."""
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True


class ConnectionCounter:
    """Open connections in total and per peer address, against their limits."""

    def __init__(self, *, max_total: int, max_per_peer: int) -> None:
        self.max_total, self.max_per_peer = max_total, max_per_peer
        self.total = 0
        self._per_peer: Counter[str] = Counter()

    def try_open(self, peer: str) -> bool:
        if self.total >= self.max_total or self._per_peer[peer] >= self.max_per_peer:
            return False
        self.total += 1
        self._per_peer[peer] += 1
        return True

    def close(self, peer: str) -> None:
        self.total -= 1
        self._per_peer[peer] -= 1
        if self._per_peer[peer] <= 0:
            del self._per_peer[peer]
