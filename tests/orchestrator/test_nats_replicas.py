"""Three ``aetherius orchestrator`` processes on one JetStream consumer, PostgreSQL and Redis.

Signals are published to NATS as the Watcher would; the replicas share the durable consumer, so
each Signal is handled by one of them, and the store must show each exactly once: one incident
per workload and failure, every Signal counted once, one report per piece of evidence.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aetherius.bus import open_bus
from aetherius.config import MessageBusSettings
from aetherius.sim import SimCluster
from aetherius.store import Store
from tests.orchestrator.factories import pod_signal
from tests.orchestrator.processes import Replicas, bus_section, incidents_of, wait_until, write_app_yaml
from tests.store.databases import migrated_database


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    async with SimCluster() as cluster:
        yield cluster


async def test_three_replica_processes_handle_each_signal_once(
    tmp_path: Path, pg_url: str, nats_url: str, redis_url: str, sim: SimCluster
) -> None:
    cluster = f"nats3-{secrets.token_hex(3)}"
    bus = bus_section(nats_url)
    config = write_app_yaml(
        tmp_path / "conf",
        bus=bus,
        database={"url": pg_url},
        redis={"url": redis_url},
        orchestrator={"batch_size": 4},  # small pulls: the replicas share the work visibly
    )
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
    replicas = Replicas(config=config, kubeconfig=kubeconfig, directory=tmp_path)
    replicas.start(3)
    publisher = await open_bus(MessageBusSettings.model_validate(bus), name="test-publisher")
    store = await Store.open(pg_url)
    try:
        workloads = [(f"app{i}-7d9f8c6b5", r) for i in range(5) for r in ("OOMKilled", "ErrImagePull")]
        signals = [
            pod_signal(reason=r, rs=rs, pod=f"{rs}-{pod}", occurrence=n, cluster=cluster)
            for rs, r in workloads
            for pod in ("aaaaa", "bbbbb", "ccccc")
            for n in (1, 2)
        ]
        random.Random(3).shuffle(signals)
        await publisher.publish(signals[:30])
        await publisher.publish(signals)  # a Watcher replaying after a restart: deduplicated

        async def settled() -> bool:
            found = await incidents_of(store, cluster)
            counted = sum(i.signal_count for i in found)
            return (
                len(found) == len(workloads)
                and counted == len(signals)
                and all(i.report_version >= 1 for i in found)
            )

        await wait_until(settled, timeout=90, what="every Signal stored and diagnosed", explain=replicas.logs)
        found = await incidents_of(store, cluster)
        assert sum(i.signal_count for i in found) == len(signals), "each Signal stored exactly once"
        for incident in found:
            assert incident.signal_count == 6
            reports = await store.list_reports(incident.id)
            # NB: the empty sim makes every report Unknown; the re-check's retries of it find the
            # same (no) findings and add no version, however long the test runs.
            assert [r.version for r in reports] == [1], "one report for one piece of evidence"
            audit = await store.list_audit(incident_id=incident.id)
            assert audit, "the diagnosis' gateway reads are audited under the incident"
    finally:
        codes = replicas.stop_all()
        await store.close()
        await publisher.close()
    assert codes == [0, 0, 0], replicas.logs()
    working = [r for r in replicas.started if "incident diagnosed" in r.text()]
    assert len(working) >= 2, "the consumer shares work between replicas\n" + replicas.logs()
