"""Shared budgets and the answer cache: in process by default, Redis where configured."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

__all__ = ["AnswerCache", "DailyBudget", "MemoryCache", "RedisCache"]


class AnswerCache(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str) -> None: ...


class MemoryCache:
    """Answers by key for one process (the tests; a single replica without Redis or store)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def set(self, key: str, value: str) -> None:
        self.data[key] = value


class RedisCache:
    """Answers shared by replicas, kept a week: a crash loop is investigated once, not per replica."""

    def __init__(self, redis: Any, *, ttl_seconds: int = 7 * 86400) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def get(self, key: str) -> str | None:
        value = await self._redis.get(f"aetherius:reasoning:answer:{key}")
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str) -> None:
        await self._redis.set(f"aetherius:reasoning:answer:{key}", value, ex=self._ttl)


class DailyBudget:
    """Tokens spent per cluster and UTC day; ``remaining`` gates each model call."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._spent: dict[tuple[str, dt.date], int] = {}

    @staticmethod
    def _today() -> dt.date:
        return dt.datetime.now(dt.UTC).date()

    def remaining(self, cluster: str) -> int:
        return max(0, self.limit - self._spent.get((cluster, self._today()), 0))

    def spend(self, cluster: str, tokens: int) -> None:
        key = (cluster, self._today())
        self._spent[key] = self._spent.get(key, 0) + tokens
