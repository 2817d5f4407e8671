"""Three orchestrator replicas on one PostgreSQL and one Redis: each Signal counted once.

The replicas share nothing but the store and Redis, as separate processes would; their Signals
arrive interleaved and concurrently, with redeliveries mixed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from aetherius.config import OrchestratorSettings
from aetherius.orchestrator.cooldown import FallbackCooldown, RedisBreaker, RedisCooldown, redis_client
from aetherius.orchestrator.model import Incident, ReportDraft
from aetherius.orchestrator.ratelimit import RedisRateLimiter
from aetherius.orchestrator.service import Orchestrator, Outcome
from aetherius.orchestrator.storage import StoreCooldownMarks, StoreRepository
from aetherius.store import IncidentFilters, Store
from tests.orchestrator.factories import pod_signal
from tests.services import free_port
from tests.store.databases import migrated_database


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
async def stores(pg_url: str) -> AsyncIterator[list[Store]]:
    opened = [await Store.open(pg_url) for _ in range(3)]
    try:
        yield opened
    finally:
        for store in opened:
            await store.close()


class EngineStandIn:
    """A diagnosis that holds until another one, on any replica, is in flight with it: the test
    then proves the replicas did overlap (they share nothing but the store and Redis)."""

    def __init__(self, overlap: Overlap) -> None:
        self.overlap = overlap

    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        overlap = self.overlap
        overlap.in_flight += 1
        overlap.most = max(overlap.most, overlap.in_flight)
        if overlap.in_flight >= 2:
            overlap.together.set()
        try:
            # NB: a bounded wait on a condition, not a sleep: the last diagnoses have no partner.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(overlap.together.wait(), timeout=2)
        finally:
            overlap.in_flight -= 1
        return ReportDraft(
            summary="fails", root_cause="MemoryLimitTooLow", severity=incident.severity, findings=[]
        )


class Overlap:
    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.together = asyncio.Event()


def replica(store: Store, *, redis_url: str, prefix: str, overlap: Overlap) -> Orchestrator:
    client = redis_client(redis_url)
    breaker = RedisBreaker()
    return Orchestrator(
        repository=StoreRepository(store),
        diagnoser=EngineStandIn(overlap),
        cooldown=FallbackCooldown(
            RedisCooldown(client, prefix=prefix), StoreCooldownMarks(store), breaker=breaker
        ),
        limiter=RedisRateLimiter(
            client, per_minute=60_000, burst=1000, prefix=prefix + "rl:", breaker=breaker
        ),
        settings=OrchestratorSettings(),
    )


@pytest.mark.parametrize("redis_up", [True, False], ids=["redis", "redis-down-store-marks"])
async def test_three_replicas_handle_each_signal_once(
    stores: list[Store], redis_url: str, redis_up: bool
) -> None:
    cluster = f"replicas-{uuid.uuid4().hex[:6]}"
    url = redis_url if redis_up else f"redis://127.0.0.1:{free_port()}/0"
    overlap = Overlap()
    replicas = [replica(s, redis_url=url, prefix=f"aeth-test-{cluster}:", overlap=overlap) for s in stores]
    workloads = [(f"app{i}-7d9f8c6b5", reason) for i in range(6) for reason in ("OOMKilled", "ErrImagePull")]
    signals = [
        pod_signal(reason=reason, rs=rs, pod=f"{rs}-{pod}", occurrence=n, cluster=cluster)
        for rs, reason in workloads
        for pod in ("aaaaa", "bbbbb", "ccccc")
        for n in range(1, 4)
    ]
    random.Random(8).shuffle(signals)
    outcomes = await asyncio.gather(*(replicas[i % 3].handle(s) for i, s in enumerate(signals)))
    # Then redeliveries (an ack lost after commit), handled by any replica.
    redelivered = random.Random(7).sample(signals, 20)
    outcomes += await asyncio.gather(
        *(replicas[(i + 1) % 3].handle(s, redelivered=True) for i, s in enumerate(redelivered))
    )
    assert {o.outcome for o in outcomes[len(signals) :]} == {Outcome.DUPLICATE}
    assert Outcome.DEFERRED not in {o.outcome for o in outcomes}
    assert overlap.most >= 2, "the replicas never diagnosed at the same time: the test proved nothing"
    page = await stores[0].list_incidents(IncidentFilters(cluster_id=cluster), limit=100)
    assert len(page.items) == len(workloads), "one incident per workload and failure"
    assert sum(i.signal_count for i in page.items) == len(signals), "each Signal stored exactly once"
    for incident in page.items:
        reports = await stores[0].list_reports(incident.id)
        assert [r.version for r in reports] == [1], "one report for one piece of evidence"
        assert incident.signal_count == 9
