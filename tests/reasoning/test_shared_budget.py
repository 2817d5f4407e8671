"""The daily token budget and the answer cache shared by replicas: through Redis where configured,
else through the store (SQLite and PostgreSQL); two replicas are two objects over one backend."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from aetherius.config import ConfigError, load_settings
from aetherius.reasoning.budget import RedisBudget, RedisCache, StoreBudget, StoreCache, TokenBudget, today
from aetherius.reasoning.investigator import Investigator
from aetherius.reasoning.service import ReasoningUnavailable
from aetherius.reasoning.setup import investigations_from_settings
from aetherius.store import Store
from tests.reasoning.conftest import INCIDENT, make_gateway, make_toolbox
from tests.reasoning.scripted_llm import scripted_llm, text
from tests.services import REDIS_URL, require_service
from tests.store.databases import BACKENDS, db_url_fixture

ANSWER = {"summary": "the dependency refuses connections", "root_cause": "CrashLoopBackOff"}


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from db_url_fixture(request, tmp_path_factory)


@pytest.fixture
async def replica(db_url: str) -> AsyncIterator[Store]:
    """A second store over the same database: another replica's."""
    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    require_service("redis", "127.0.0.1", 6379)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


async def _shared(one: TokenBudget, two: TokenBudget) -> None:
    cluster = f"c-{secrets.token_hex(4)}"
    assert await one.remaining(cluster) == 1000
    await one.spend(cluster, 300)
    assert await two.remaining(cluster) == 700
    # twenty model calls at once on two replicas: none is lost
    await asyncio.gather(*(b.spend(cluster, 10) for b in (one, two) for _ in range(10)))
    assert await one.remaining(cluster) == await two.remaining(cluster) == 500
    await two.spend(cluster, 900)
    assert await one.remaining(cluster) == 0


async def test_the_store_budget_is_shared_by_replicas(store: Store, replica: Store) -> None:
    await _shared(StoreBudget(store, 1000), StoreBudget(replica, 1000))


async def test_the_redis_budget_is_shared_by_replicas(redis: aioredis.Redis) -> None:
    one, two = RedisBudget(redis, 1000), RedisBudget(redis, 1000)
    await _shared(one, two)
    ttl = await redis.ttl(f"aetherius:reasoning:tokens:nothing:{today()}")
    assert ttl == -2  # NB: a cluster that spent nothing has no key


Build = Callable[..., Investigator]


async def test_a_replica_refuses_once_another_spent_the_clusters_day(
    investigator_for: Build, store: Store, replica: Store
) -> None:
    incident = INCIDENT.__class__(**{**INCIDENT.__dict__, "cluster": f"c-{secrets.token_hex(4)}"})
    with scripted_llm([text(ANSWER, prompt_tokens=900, completion_tokens=100)]) as llm:
        one, two = investigator_for(llm.url), investigator_for(llm.url)
        one.budget, two.budget = StoreBudget(store, 1000), StoreBudget(replica, 1000)
        first = await one.investigate(incident, make_toolbox(make_gateway()))
        second = await two.investigate(incident, make_toolbox(make_gateway()), question="and now?")
    assert first.answer.ending == "answered" and second.answer.ending == "daily-budget"
    assert len(llm.requests) == 1


async def test_the_store_cache_answers_another_replica(
    investigator_for: Build, store: Store, replica: Store
) -> None:
    incident = INCIDENT.__class__(**{**INCIDENT.__dict__, "rules_summary": f"Unknown {secrets.token_hex(4)}"})
    with scripted_llm([text(ANSWER)]) as llm:
        one, two = investigator_for(llm.url), investigator_for(llm.url)
        one.cache, two.cache = StoreCache(store), StoreCache(replica)
        first = await one.investigate(incident, make_toolbox(make_gateway()))
        second = await two.investigate(incident, make_toolbox(make_gateway()))
    assert first.answer.ending == "answered" and second.answer.ending == "cached"
    assert second.answer.input_tokens == 0 and len(llm.requests) == 1
    expired = StoreCache(store, ttl_seconds=-1)
    await expired.set("gone", "x")
    assert await expired.get("gone") is None


async def test_redis_down_falls_back_to_the_store(store: Store) -> None:
    """Nothing listens on the port: the store counts and caches instead, and says nothing is lost."""
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        cluster = f"c-{secrets.token_hex(4)}"
        budget = RedisBudget(dead, 1000, fallback=StoreBudget(store, 1000))
        await budget.spend(cluster, 400)
        assert await budget.remaining(cluster) == 600 == await StoreBudget(store, 1000).remaining(cluster)
        assert await RedisBudget(dead, 1000).remaining(cluster) == 0  # no fallback: refused, not spent
        cache = RedisCache(dead, fallback=StoreCache(store))
        await cache.set(f"k-{cluster}", "answer")
        assert await cache.get(f"k-{cluster}") == "answer"
    finally:
        await dead.aclose()


async def test_investigations_from_settings_say_why_they_cannot_start(store: Store, tmp_path: Path) -> None:
    off = investigations_from_settings(load_settings(env={}), store=store, kube=None)
    assert not off.available and "reasoning.enabled" in off.why_unavailable()
    with pytest.raises(ReasoningUnavailable, match=r"reasoning\.enabled"):
        await off.start(1, requested_by="x")
    on = {("reasoning", "enabled"): True, ("reasoning", "base_url"): "http://127.0.0.1:9/v1"}
    on |= {("reasoning", "model"): "m", ("reasoning", "pseudonym_key_file"): str(tmp_path / "key")}
    blind = investigations_from_settings(load_settings(env={}, overrides=on), store=store, kube=None)
    assert not blind.available and "cannot read the cluster" in blind.why_unavailable()
    assert isinstance(blind.investigator.budget if blind.investigator else None, StoreBudget)
    await blind.close()
    unset = {("reasoning", "enabled"): True}
    with pytest.raises(ConfigError, match=r"reasoning\.base_url"):
        investigations_from_settings(load_settings(env={}, overrides=unset), store=store, kube=None)
