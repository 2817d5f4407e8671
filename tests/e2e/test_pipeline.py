"""End to end: sim → Watcher → NATS → orchestrator processes → PostgreSQL, with faults.

The demo scenario plays its six failures; the Watcher (in process, the real one) publishes to
NATS; two ``aetherius orchestrator`` processes consume. Whatever breaks on the way (a replica
SIGKILLed while holding work, Redis gone, NATS restarted, PostgreSQL stopped), once it recovers
the store must hold every published Signal exactly once, one incident per failure with the right
root cause, and a report with evidence for each.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from aetherius.bus import StatefulBus, open_bus
from aetherius.bus.base import Delivery, KeyValue
from aetherius.config import Settings
from aetherius.kube import KubeClient
from aetherius.signals import Signal
from aetherius.sim import SimCluster
from aetherius.store import Store
from aetherius.watch.watcher import Watcher
from tests.e2e.services import PrivatePostgres, PrivateRedis
from tests.orchestrator.processes import Replicas, bus_section, incidents_of, write_app_yaml
from tests.orchestrator.test_run_demo import EXPECTED
from tests.services import PrivateNats
from tests.store.databases import migrated_database
from tests.waiting import until


class RecordingBus:
    """The Watcher's bus, remembering every msg id it had acknowledged."""

    def __init__(self, bus: StatefulBus) -> None:
        self.bus = bus
        self.published: set[str] = set()

    @property
    def connected(self) -> bool:
        return self.bus.connected

    async def publish(self, signals: Sequence[Signal]) -> None:
        await self.bus.publish(signals)
        self.published.update(s.msg_id for s in signals)

    async def pull(self, *, durable: str, batch: int, timeout: float) -> list[Delivery]:
        return await self.bus.pull(durable=durable, batch=batch, timeout=timeout)

    async def key_value(self, bucket: str) -> KeyValue:
        return await self.bus.key_value(bucket)

    async def close(self) -> None:
        await self.bus.close()


async def stored_msg_ids(database_url: str, cluster: str) -> set[str]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT dedup_key, occurrence FROM signals WHERE cluster_id = $1", cluster
        )
    finally:
        await connection.close()
    return {f"{r['dedup_key']}:{r['occurrence']}" for r in rows}


FAULTS = ["none", "replica-sigkill", "redis-down", "nats-restart", "postgres-stopped"]


@pytest.fixture(params=FAULTS)
def fault(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def private_pg(fault: str, tmp_path: Path) -> Iterator[PrivatePostgres | None]:
    if fault != "postgres-stopped":
        yield None
        return
    with PrivatePostgres(tmp_path) as pg:
        yield pg


@pytest.fixture
def database_url(private_pg: PrivatePostgres | None, tmp_path: Path) -> Iterator[str]:
    if private_pg is not None:
        yield private_pg.database_url()
        return
    with migrated_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
def private_redis(fault: str) -> Iterator[PrivateRedis | None]:
    if fault != "redis-down":
        yield None
        return
    with PrivateRedis() as redis:
        yield redis


async def test_each_demo_failure_once_whatever_breaks(
    tmp_path: Path,
    fault: str,
    own_nats: PrivateNats,
    database_url: str,
    redis_url: str,
    private_pg: PrivatePostgres | None,
    private_redis: PrivateRedis | None,
) -> None:
    cluster = f"e2e-{fault}-{secrets.token_hex(3)}"
    await _scenario(
        tmp_path,
        cluster,
        fault,
        own_nats,
        database_url,
        private_redis.url if private_redis else redis_url,
        pg=private_pg,
        redis=private_redis,
    )


async def _scenario(
    tmp_path: Path,
    cluster: str,
    fault: str,
    nats_server: PrivateNats,
    database_url: str,
    redis_url: str,
    *,
    pg: PrivatePostgres | None = None,
    redis: PrivateRedis | None = None,
) -> None:
    bus = bus_section(nats_server.url)
    config = write_app_yaml(
        tmp_path / "conf",
        bus=bus,
        database={"url": database_url},
        redis={"url": redis_url},
        orchestrator={"batch_size": 8},
    )
    settings = Settings.model_validate({"cluster_id": cluster, "message_bus": bus})
    async with SimCluster("demo", speed=40) as sim:
        kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
        replicas = Replicas(config=config, kubeconfig=kubeconfig, directory=tmp_path)
        replicas.start(2)
        client = await KubeClient.from_kubeconfig(kubeconfig)
        recording = RecordingBus(await open_bus(settings.message_bus, name="e2e-watch"))
        watcher = Watcher(client=client, bus=recording, settings=settings, cluster_id=cluster)
        store = await Store.open(database_url)
        try:
            await watcher.start()

            async def first_incident() -> bool:
                return bool(await incidents_of(store, cluster))

            if fault != "postgres-stopped":
                await until(first_incident, timeout=60, what="a first incident", explain=replicas.logs)

            async def stored_some() -> bool:
                return bool(await stored_msg_ids(database_url, cluster))

            await _inject(
                fault, replicas=replicas, nats_server=nats_server, pg=pg, redis=redis, flowing=stored_some
            )

            async def settled() -> list[Any] | None:
                if sim.timeline.pending:
                    return None
                found = await incidents_of(store, cluster)
                stored = await stored_msg_ids(database_url, cluster)
                done = len(found) >= len(EXPECTED) and all(i.report_version >= 1 for i in found)
                return found if done and recording.published <= stored else None

            found = await until(settled, timeout=150, what="the pipeline to settle", explain=replicas.logs)
            roots = {(i.namespace, i.owner_name or i.object_name): i.root_cause for i in found}
            assert roots == EXPECTED, replicas.logs()
            assert len(found) == len(EXPECTED), "no incident duplicated"
            assert recording.published == await stored_msg_ids(database_url, cluster), "every Signal, once"
            for incident in found:
                reports = await store.list_reports(incident.id)
                assert reports, "no report lost"
                assert reports[-1].document["evidence"], "the report carries its evidence"
        finally:
            await watcher.stop(flush_timeout=5)
            await recording.close()
            await client.close()
            await store.close()
            codes = replicas.stop_all()
    assert all(code in (0, -9) for code in codes), replicas.logs()


async def _inject(
    fault: str,
    *,
    replicas: Replicas,
    nats_server: PrivateNats,
    pg: PrivatePostgres | None,
    redis: PrivateRedis | None,
    flowing: Callable[[], Awaitable[bool]],
) -> None:
    """Break one thing. The outages last a fixed while: their length is the fault, not a wait."""
    if fault == "replica-sigkill":
        replicas.started[0].kill()  # it holds unacked work: redelivered to the other after ack_wait
        replicas.start(1)
    elif fault == "redis-down":
        assert redis is not None
        redis.stop()  # the replicas fall back to the store's cooldown marks
    elif fault == "nats-restart":
        nats_server.stop()
        await asyncio.sleep(2)
        nats_server.start()
    elif fault == "postgres-stopped":
        assert pg is not None

        async def consuming() -> bool:
            return all("orchestrator consuming" in r.text() for r in replicas.started)

        # NB: a replica that cannot open the store at start exits (its Deployment restarts it):
        # not the fault under test, so the store goes away only once both are consuming.
        await until(consuming, timeout=60, what="the replicas consuming", explain=replicas.logs)
        # Signals are flowing (the replicas have stored some); the store goes away under them
        await until(flowing, timeout=60, what="the replicas storing Signals", explain=replicas.logs)
        pg.stop()
        await asyncio.sleep(4)
        pg.start()
