"""Per-cluster rate limit on diagnoses: a token bucket, shared by replicas through Redis.

A cluster-wide outage (a node dies, fifty Deployments fail at once) must not become fifty
simultaneous scans of an API server that is already struggling. A diagnosis that finds the bucket
empty is not dropped: the consumer holds its Signal (in progress) and tries again after the wait,
without spending a delivery attempt (see ``Consumer._diagnosis``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError

from aetherius.orchestrator.cooldown import RedisBreaker
from aetherius.ratelimit import RateLimiter

RATE_LIMITED = Counter(
    "aetherius_orchestrator_diagnoses_rate_limited_total",
    "Diagnoses deferred because the cluster's diagnosis budget was spent",
    ["cluster"],
)


class DiagnosisRateLimiter(Protocol):
    async def try_acquire(self, cluster_id: str) -> float:
        """0.0 when a diagnosis may start now (a token is taken), else the seconds to wait."""


class MemoryRateLimiter:
    """The budget in this process only (no Redis): the project's keyed buckets, one per cluster."""

    def __init__(self, *, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self._buckets = RateLimiter(rate=per_minute / 60.0, burst=burst)
        self._clock = clock

    async def try_acquire(self, cluster_id: str) -> float:
        wait = self._buckets.acquire(cluster_id, now=self._clock())
        if wait > 0:
            RATE_LIMITED.labels(cluster=cluster_id).inc()
        return wait


# KEYS[1] bucket hash; ARGV: rate per ms, burst, now ms. Returns 0 or the wait in ms.
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
if now > updated then tokens = math.min(burst, tokens + (now - updated) * rate) end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(math.max(now, updated)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return wait
"""


class RedisRateLimiter:
    """The same bucket in Redis (one Lua script, atomic), with the in-process bucket as fallback."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        per_minute: float,
        burst: int,
        prefix: str = "aetherius:ratelimit:",
        breaker: RedisBreaker | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.rate_ms = per_minute / 60_000.0
        self.burst = burst
        self.breaker = breaker or RedisBreaker()
        self.fallback = MemoryRateLimiter(per_minute=per_minute, burst=burst)
        self._script = client.register_script(_BUCKET_SCRIPT)

    async def try_acquire(self, cluster_id: str) -> float:
        if not self.breaker.is_open:
            try:
                # NB: the replicas' wall clocks are the time base, as Redis' own TIME would need
                # a script with side effects after a non-deterministic call.
                wait_ms = await self._script(
                    keys=[self.prefix + cluster_id],
                    args=[repr(self.rate_ms), self.burst, int(time.time() * 1000)],
                )
            except (RedisError, OSError) as exc:
                self.breaker.trip(exc)
            else:
                if int(wait_ms) > 0:
                    RATE_LIMITED.labels(cluster=cluster_id).inc()
                return int(wait_ms) / 1000.0
        return await self.fallback.try_acquire(cluster_id)
