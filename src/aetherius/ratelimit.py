"""Keyed token buckets: one bucket per key (an API token, a client address, a webhook source, a
cluster's diagnosis budget), each refilling at ``rate`` per second up to ``burst``.

One implementation for every "at most so many per second, per who" in Aetherius. It answers at
once, with the wait when a key is out of tokens, so each caller decides what waiting means (a
429 with Retry-After, a diagnosis held back). The Kubernetes client's own limiter, which makes
the caller wait, is ``aetherius.kube.ratelimit.TokenBucket``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key, in process.

    NB: in process on purpose for the API: a limit protects this replica's store connections;
    with N replicas behind a balancer the effective limit is N times the configured one. Budgets
    shared by replicas (diagnoses per cluster) use Redis with the same arithmetic.
    """

    def __init__(self, *, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, *, now: float | None = None) -> float:
        """Take one token; return 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            bucket = _Bucket(tokens=self.burst, updated=now)
            self._buckets[key] = bucket
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def wait(self, key: str, *, now: float | None = None) -> float:
        """Seconds until ``key`` could take a token (0.0: now), taking none."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        # Buckets that have refilled completely carry no state worth keeping.
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
