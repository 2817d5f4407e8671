"""Assemble an orchestrator from settings and run it until told to stop.

One function builds the parts (cooldown and rate limit in Redis when a URL is configured, in
process otherwise; the consumer and the resolver), one runs them, so ``aetherius orchestrator``,
``aetherius run`` and the tests start the orchestrator the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from aetherius.bus.base import SignalBus
from aetherius.config import Settings
from aetherius.logs import get_logger
from aetherius.ops.serve import stop_on_signals
from aetherius.orchestrator.clusters import ClusterRegistry
from aetherius.orchestrator.consumer import Consumer
from aetherius.orchestrator.cooldown import (
    CooldownMarks,
    FallbackCooldown,
    MemoryCooldown,
    RedisBreaker,
    RedisCooldown,
    redis_client,
)
from aetherius.orchestrator.inconclusive import InconclusiveRetry
from aetherius.orchestrator.model import IncidentRepository
from aetherius.orchestrator.owners import SignalEnricher
from aetherius.orchestrator.ratelimit import DiagnosisRateLimiter, MemoryRateLimiter, RedisRateLimiter
from aetherius.orchestrator.resolver import HealthClock, HealthProbe, Resolver
from aetherius.orchestrator.service import Diagnoser, Orchestrator

log = get_logger(__name__)


@dataclass
class OrchestratorRole:
    orchestrator: Orchestrator
    consumer: Consumer
    resolver: Resolver
    redis: aioredis.Redis | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and resolve until ``stop``; the batch in hand is finished, then acked."""
        resolver_stop = asyncio.Event()
        resolver = asyncio.create_task(self.resolver.run(resolver_stop), name="resolver")
        try:
            await self.consumer.run(stop)
        finally:
            resolver_stop.set()
            await resolver
            await self.close()

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None


def build_orchestrator(
    settings: Settings,
    *,
    bus: SignalBus,
    repository: IncidentRepository,
    diagnoser: Diagnoser,
    probe: HealthProbe | None,
    store_marks: CooldownMarks | None = None,
    redis_url: str | None = None,
    enricher: SignalEnricher | None = None,
    clusters: ClusterRegistry | None = None,
    on_unknown: Callable[[str, str], None] | None = None,
) -> OrchestratorRole:
    """The orchestrator role over the given bus, store and engine.

    ``store_marks`` are the store's cooldown marks, the fallback while Redis is down (and the
    shared cooldown when no Redis is configured); without them, marks are kept in process.
    ``on_unknown`` is told of each report whose root cause is Unknown (the auto-investigation).
    """
    conf = settings.orchestrator
    url = settings.redis.url if redis_url is None else redis_url
    fallback: CooldownMarks = store_marks or MemoryCooldown()
    client: aioredis.Redis | None = None
    cooldown: CooldownMarks
    limiter: DiagnosisRateLimiter
    if url:
        client = redis_client(url)
        breaker = RedisBreaker()
        cooldown = FallbackCooldown(RedisCooldown(client), fallback, breaker=breaker)
        limiter = RedisRateLimiter(
            client, per_minute=conf.diagnoses_per_minute, burst=conf.diagnosis_burst, breaker=breaker
        )
    else:
        cooldown = fallback
        limiter = MemoryRateLimiter(per_minute=conf.diagnoses_per_minute, burst=conf.diagnosis_burst)
    health = HealthClock()
    orchestrator = Orchestrator(
        repository=repository,
        diagnoser=diagnoser,
        cooldown=cooldown,
        limiter=limiter,
        settings=conf,
        health=health,
        enricher=enricher,
        clusters=clusters,
        on_unknown=on_unknown,
    )
    consumer = Consumer(
        bus=bus,
        orchestrator=orchestrator,
        durable=conf.durable,
        batch=conf.batch_size,
        pull_timeout=conf.pull_timeout.total_seconds(),
        max_deliver=settings.message_bus.max_deliver,
        concurrency=conf.concurrency,
        diagnoses=conf.diagnosis_concurrency,
        run_limit=conf.write_batch,
        progress_every=settings.message_bus.ack_wait.total_seconds() / 3,
    )
    retry = InconclusiveRetry(orchestrator, interval=conf.recheck_interval)
    resolver = Resolver(
        repository=repository,
        probe=probe,
        resolve_after=conf.resolve_after,
        recheck_interval=conf.recheck_interval,
        health=health,
        retry=retry,
    )
    if clusters is not None:

        async def cluster_back(cluster_id: str) -> None:
            await retry.cluster_back(cluster_id, repository=repository)

        clusters.on_back = cluster_back
    return OrchestratorRole(orchestrator=orchestrator, consumer=consumer, resolver=resolver, redis=client)


async def run_until_stopped(
    main: Callable[[asyncio.Event], Awaitable[None]], *, duration: float | None = None
) -> None:
    """Run ``main(stop)``; SIGINT/SIGTERM (or ``duration`` seconds) set ``stop`` for a clean exit."""
    with stop_on_signals(duration=duration) as stop:
        await main(stop)
