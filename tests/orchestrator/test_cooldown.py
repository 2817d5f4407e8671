from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from aetherius.orchestrator.cooldown import (
    COOLDOWN_FALLBACKS,
    FallbackCooldown,
    MemoryCooldown,
    RedisBreaker,
    RedisCooldown,
    RedisUnavailable,
    redis_client,
)
from aetherius.orchestrator.ratelimit import MemoryRateLimiter, RedisRateLimiter
from tests.services import free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis_cooldown(redis_url: str) -> AsyncIterator[RedisCooldown]:
    client = redis_client(redis_url)
    prefix = f"aeth-test-{uuid.uuid4().hex[:8]}:"
    yield RedisCooldown(client, prefix=prefix)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_memory_cooldown_claims_once_per_ttl_and_owner_may_reclaim() -> None:
    clock = FakeClock()
    marks = MemoryCooldown(clock=clock)
    assert await marks.claim("inc:d1", owner="sig-1", ttl=900)
    assert not await marks.claim("inc:d1", owner="sig-2", ttl=900)
    assert await marks.claim("inc:d1", owner="sig-1", ttl=900), "a redelivery keeps its own claim"
    assert await marks.claim("inc:d2", owner="sig-3", ttl=900), "new evidence is a new key"
    clock.now += 901
    assert await marks.claim("inc:d1", owner="sig-2", ttl=900), "after the cooldown it is free again"


async def test_redis_cooldown_is_shared_between_clients(
    redis_cooldown: RedisCooldown, redis_url: str
) -> None:
    other_client = redis_client(redis_url)
    other = RedisCooldown(other_client, prefix=redis_cooldown.prefix)
    try:
        assert await redis_cooldown.claim("inc:d1", owner="sig-1", ttl=60)
        assert not await other.claim("inc:d1", owner="sig-2", ttl=60)
        assert await other.claim("inc:d1", owner="sig-1", ttl=60)
        ttl_ms = await other_client.pttl(redis_cooldown.prefix + "inc:d1")
        assert 0 < ttl_ms <= 60_000
    finally:
        await other_client.aclose()


async def test_redis_cooldown_expires(redis_cooldown: RedisCooldown) -> None:
    assert await redis_cooldown.claim("inc:short", owner="a", ttl=0.001)
    await redis_cooldown.client.delete(redis_cooldown.prefix + "inc:short")  # as expiry does
    assert await redis_cooldown.claim("inc:short", owner="b", ttl=60)


async def test_dead_redis_raises_and_fallback_takes_over() -> None:
    dead = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(RedisUnavailable):
            await RedisCooldown(dead).claim("k", owner="a", ttl=60)
        fallback = MemoryCooldown()
        breaker = RedisBreaker(pause=60)
        cooldown = FallbackCooldown(RedisCooldown(dead), fallback, breaker=breaker)
        before = COOLDOWN_FALLBACKS._value.get()
        assert await cooldown.claim("k", owner="a", ttl=60)
        assert breaker.is_open
        assert not await cooldown.claim("k", owner="b", ttl=60), "the fallback still deduplicates"
        assert COOLDOWN_FALLBACKS._value.get() == before + 2
    finally:
        await dead.aclose()


async def test_memory_rate_limiter_is_per_cluster() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(per_minute=60, burst=2, clock=clock)
    assert await limiter.try_acquire("a") == 0
    assert await limiter.try_acquire("a") == 0
    wait = await limiter.try_acquire("a")
    assert wait == pytest.approx(1.0)
    assert await limiter.try_acquire("b") == 0, "another cluster has its own budget"
    clock.now += 1.0
    assert await limiter.try_acquire("a") == 0


async def test_redis_rate_limiter_shares_the_bucket(redis_url: str) -> None:
    prefix = f"aeth-test-{uuid.uuid4().hex[:8]}:"
    one, two = redis_client(redis_url), redis_client(redis_url)
    try:
        first = RedisRateLimiter(one, per_minute=1, burst=3, prefix=prefix)
        second = RedisRateLimiter(two, per_minute=1, burst=3, prefix=prefix)
        grants = [await lim.try_acquire("c1") for lim in (first, second, first, second)]
        assert grants[:3] == [0, 0, 0]
        assert grants[3] > 1.0, "the fourth diagnosis waits: the bucket is shared"
        assert await first.try_acquire("c2") == 0
    finally:
        await one.delete(prefix + "c1", prefix + "c2")
        await one.aclose()
        await two.aclose()


async def test_redis_rate_limiter_falls_back_when_redis_is_down() -> None:
    dead = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    try:
        limiter = RedisRateLimiter(dead, per_minute=60, burst=1)
        assert await limiter.try_acquire("c") == 0
        assert await limiter.try_acquire("c") > 0
    finally:
        await dead.aclose()
