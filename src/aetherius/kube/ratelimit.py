"""A client-side token bucket, as client-go has (QPS 50 / burst 100 by default).

No Python Kubernetes client limits its own request rate; without one, a diagnosis of a large
cluster or a relist storm can overload an API server that is already in trouble.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Counter

KUBE_THROTTLE_SECONDS = Counter(
    "aetherius_kube_throttle_seconds_total", "Time spent waiting for the client-side rate limiter"
)


class TokenBucket:
    """``acquire()`` waits until a token is free; tokens refill at ``qps`` up to ``burst``."""

    def __init__(self, *, qps: float, burst: int) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0  # total time callers spent throttled (exported as a metric)

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.qps)
        self._updated = now

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            self._refill(now)
            if self._tokens >= 1:
                self._tokens -= 1
                return
            wait = (1 - self._tokens) / self.qps
            self.waited_seconds += wait
            KUBE_THROTTLE_SECONDS.inc(wait)
            await asyncio.sleep(wait)
            self._refill(time.monotonic())
            self._tokens = max(0.0, self._tokens - 1)
