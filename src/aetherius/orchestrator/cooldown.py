"""Cooldown: a crash loop is diagnosed once, not every time the kubelet says BackOff again.

A claim is keyed by the incident's fingerprint *and* its evidence digest, so new evidence (a new
reason, a severity step, a new container) is a new key and is diagnosed at once, while the same
evidence is diagnosed again only when the key has expired (the cooldown, 15 min by default).

The claim's value is the msg id of the Signal that took it: if the replica holding it dies before
its report is committed, the redelivery of that same Signal finds its own claim and carries on —
a claim never strands a diagnosis.

Across replicas the claims live in Redis (``SET NX PX``); without Redis, in process. When Redis is
down the store's own cooldown marks take over, so a Redis outage costs latency, never a storm of
duplicate diagnoses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError

from aetherius.logs import get_logger

log = get_logger(__name__)

COOLDOWN_FALLBACKS = Counter(
    "aetherius_orchestrator_cooldown_fallback_total",
    "Cooldown decisions taken by the store's marks because Redis did not answer",
)


class CooldownMarks(Protocol):
    async def claim(self, key: str, *, owner: str, ttl: float) -> bool:
        """True when ``owner`` may diagnose now: the key was free (and is now held) or is its own."""

    async def release(self, key: str, *, owner: str) -> None:
        """Give up ``owner``'s claim (its diagnosis did not happen), so the next Signal may try.

        NB: a claim left behind by a failed diagnosis would block that evidence for the whole
        cooldown: the incident would keep no report although its Signals keep coming.
        """


class MemoryCooldown:
    """Claims in this process only: the embedded default, and the last resort."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._marks: dict[str, tuple[str, float]] = {}
        self._clock = clock

    async def claim(self, key: str, *, owner: str, ttl: float) -> bool:
        now = self._clock()
        held = self._marks.get(key)
        if held is not None and held[1] > now and held[0] != owner:
            return False
        if held is None or held[1] <= now:
            self._marks[key] = (owner, now + ttl)
            if len(self._marks) > 10_000:
                self._marks = {k: v for k, v in self._marks.items() if v[1] > now}
        return True

    async def release(self, key: str, *, owner: str) -> None:
        held = self._marks.get(key)
        if held is not None and held[0] == owner:
            del self._marks[key]


class RedisUnavailable(Exception):
    """Redis did not answer; the caller uses its fallback."""


class RedisBreaker:
    """Stops asking a Redis that just failed for a few seconds, so each decision does not wait
    out a connect timeout while it is down."""

    def __init__(self, *, pause: float = 3.0) -> None:
        self.pause = pause
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self, exc: BaseException) -> None:
        if not self.is_open:
            log.warning("redis unavailable, using fallback", error=str(exc) or type(exc).__name__)
        self._open_until = time.monotonic() + self.pause


def redis_client(url: str) -> aioredis.Redis:
    """A client that fails fast: a cooldown decision must not hang on a dead Redis."""
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=0.5, socket_timeout=1.0, retry_on_timeout=False, health_check_interval=0
    )


# Delete the mark only if it is still the owner's (another may have taken it after it expired).
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisCooldown:
    def __init__(self, client: aioredis.Redis, *, prefix: str = "aetherius:cooldown:") -> None:
        self.client = client
        self.prefix = prefix

    async def claim(self, key: str, *, owner: str, ttl: float) -> bool:
        name = self.prefix + key
        try:
            if await self.client.set(name, owner, nx=True, px=max(1, int(ttl * 1000))):
                return True
            held = await self.client.get(name)
            if held is None:  # expired between the two calls
                return bool(await self.client.set(name, owner, nx=True, px=max(1, int(ttl * 1000))))
            return (held.decode() if isinstance(held, bytes) else str(held)) == owner
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(str(exc)) from exc

    async def release(self, key: str, *, owner: str) -> None:
        try:
            await self.client.eval(_RELEASE_SCRIPT, 1, self.prefix + key, owner)
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(str(exc)) from exc


class FallbackCooldown:
    """Redis first; the store's marks when Redis is down (counted)."""

    def __init__(self, primary: RedisCooldown, fallback: CooldownMarks, *, breaker: RedisBreaker) -> None:
        self.primary = primary
        self.fallback = fallback
        self.breaker = breaker

    async def claim(self, key: str, *, owner: str, ttl: float) -> bool:
        if not self.breaker.is_open:
            try:
                return await self.primary.claim(key, owner=owner, ttl=ttl)
            except RedisUnavailable as exc:
                self.breaker.trip(exc)
        COOLDOWN_FALLBACKS.inc()
        return await self.fallback.claim(key, owner=owner, ttl=ttl)

    async def release(self, key: str, *, owner: str) -> None:
        # NB: both: the claim may have been taken by either, depending on Redis at the time.
        if not self.breaker.is_open:
            try:
                await self.primary.release(key, owner=owner)
            except RedisUnavailable as exc:
                self.breaker.trip(exc)
        await self.fallback.release(key, owner=owner)
