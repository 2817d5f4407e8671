"""Shared budgets and the answer cache: Redis where configured, else the store; in process for tests.

Several API and orchestrator replicas investigate for the same clusters: the daily token budget
and the cache only mean something when they are shared, so each has a Redis and a store form with
the same behaviour (the memory forms serve tests and a single process without either).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import structlog

from aetherius.store import Store

__all__ = [
    "AnswerCache",
    "DailyBudget",
    "MemoryCache",
    "RedisBudget",
    "RedisCache",
    "StoreBudget",
    "StoreCache",
    "TokenBudget",
    "today",
]

_WEEK = 7 * 86400


def _redis_down() -> tuple[type[BaseException], ...]:
    """What a Redis that does not answer raises. NB: imported when Redis is in use, not before:
    the API process imports this module whether or not Redis is configured."""
    from redis.exceptions import RedisError

    return (RedisError, OSError)


log = structlog.get_logger(__name__)


def today() -> str:
    """The budget's day: UTC, so that every replica agrees on when it starts."""
    return dt.datetime.now(dt.UTC).date().isoformat()


class AnswerCache(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str) -> None: ...


class TokenBudget(Protocol):
    """Tokens per cluster and UTC day; ``remaining`` gates each model call, ``spend`` follows it."""

    limit: int

    async def remaining(self, cluster: str) -> int: ...
    async def spend(self, cluster: str, tokens: int) -> None: ...


class MemoryCache:
    """Answers by key for one process (the tests; a single replica without Redis or store)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def set(self, key: str, value: str) -> None:
        self.data[key] = value


class RedisCache:
    """Answers shared by replicas, kept a week: a crash loop is investigated once, not per replica.

    While Redis does not answer, ``fallback`` (the store's cache) does: an outage costs a repeat
    investigation at worst, never an error.
    """

    def __init__(self, redis: Any, *, ttl_seconds: int = _WEEK, fallback: AnswerCache | None = None) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._fallback = fallback

    async def get(self, key: str) -> str | None:
        try:
            value = await self._redis.get(f"aetherius:reasoning:answer:{key}")
        except _redis_down() as exc:
            log.warning("reasoning.cache_redis_down", error=str(exc))
            return await self._fallback.get(key) if self._fallback is not None else None
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str) -> None:
        try:
            await self._redis.set(f"aetherius:reasoning:answer:{key}", value, ex=self._ttl)
        except _redis_down() as exc:
            log.warning("reasoning.cache_redis_down", error=str(exc))
            if self._fallback is not None:
                await self._fallback.set(key, value)


class StoreCache:
    """The same cache in the store, for installations without Redis (``reasoning_answers``)."""

    def __init__(self, store: Store, *, ttl_seconds: int = _WEEK) -> None:
        self._store = store
        self._ttl = ttl_seconds

    async def get(self, key: str) -> str | None:
        return await self._store.cached_answer(key)

    async def set(self, key: str, value: str) -> None:
        await self._store.cache_answer(key, value, ttl=self._ttl)


class DailyBudget:
    """The budget of one process (tests, the replay benchmark)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._spent: dict[tuple[str, str], int] = {}

    async def remaining(self, cluster: str) -> int:
        return max(0, self.limit - self._spent.get((cluster, today()), 0))

    async def spend(self, cluster: str, tokens: int) -> None:
        key = (cluster, today())
        self._spent[key] = self._spent.get(key, 0) + tokens


class RedisBudget:
    """The budget shared by replicas through Redis: one counter per cluster and day (INCRBY).

    While Redis does not answer, ``fallback`` (the store's budget) counts: what is spent meanwhile
    is counted there, so an outage can let a cluster spend up to twice its day, never without end.
    Without a fallback an unreachable Redis refuses (nothing left): a budget that cannot be read
    is not spent.
    """

    def __init__(self, redis: Any, limit: int, *, fallback: TokenBudget | None = None) -> None:
        self._redis = redis
        self.limit = limit
        self._fallback = fallback

    @staticmethod
    def _key(cluster: str) -> str:
        return f"aetherius:reasoning:tokens:{cluster}:{today()}"

    async def remaining(self, cluster: str) -> int:
        try:
            value = await self._redis.get(self._key(cluster))
        except _redis_down() as exc:
            log.warning("reasoning.budget_redis_down", error=str(exc))
            return await self._fallback.remaining(cluster) if self._fallback is not None else 0
        return max(0, self.limit - int(value or 0))

    async def spend(self, cluster: str, tokens: int) -> None:
        key = self._key(cluster)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, tokens)
                pipe.expire(key, 2 * 86400)  # NB: a day's counter outlives its day, then goes
                await pipe.execute()
        except _redis_down() as exc:
            log.warning("reasoning.budget_redis_down", error=str(exc))
            if self._fallback is not None:
                await self._fallback.spend(cluster, tokens)


class StoreBudget:
    """The budget shared by replicas through the store, where Redis is not configured."""

    def __init__(self, store: Store, limit: int) -> None:
        self._store = store
        self.limit = limit

    async def remaining(self, cluster: str) -> int:
        return max(0, self.limit - await self._store.spent_tokens(cluster, day=today()))

    async def spend(self, cluster: str, tokens: int) -> None:
        await self._store.spend_tokens(cluster, day=today(), tokens=tokens)
