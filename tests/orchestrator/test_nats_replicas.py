"""Three ``aetherius orchestrator`` processes on one JetStream consumer, PostgreSQL and Redis.

Signals are published to NATS as the Watcher would; the replicas share the durable consumer, so
each Signal is handled by one of them, and the store must show each exactly once: one incident
per workload and failure, every Signal counted once, one report per piece of evidence. The
replicas that did the first work then stop, and the ones left must take the rest.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aetherius.bus import open_bus
from aetherius.config import MessageBusSettings
from aetherius.signals import Signal
from aetherius.sim import SimCluster
from aetherius.store import Store
from tests.orchestrator.factories import pod_signal
from tests.orchestrator.processes import (
    Replica,
    Replicas,
    bus_section,
    incidents_of,
    write_app_yaml,
)
from tests.store.databases import migrated_database
from tests.waiting import until


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    async with SimCluster() as cluster:
        yield cluster


def _signals(workloads: list[tuple[str, str]], *, cluster: str) -> list[Signal]:
    signals = [
        pod_signal(reason=r, rs=rs, pod=f"{rs}-{pod}", occurrence=n, cluster=cluster)
        for rs, r in workloads
        for pod in ("aaaaa", "bbbbb", "ccccc")
        for n in (1, 2)
    ]
    random.Random(3).shuffle(signals)
    return signals


def _diagnosed(replica: Replica, *, after: int = 0) -> bool:
    return "incident diagnosed" in replica.text()[after:]


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
        orchestrator={"batch_size": 4},  # small pulls: no replica holds more than a few at once
    )
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
    replicas = Replicas(config=config, kubeconfig=kubeconfig, directory=tmp_path)
    replicas.start(3)
    publisher = await open_bus(MessageBusSettings.model_validate(bus), name="test-publisher")
    store = await Store.open(pg_url)
    workloads = [(f"app{i}-7d9f8c6b5", r) for i in range(6) for r in ("OOMKilled", "ErrImagePull")]
    published: list[Signal] = []

    async def settled() -> bool:
        found = await incidents_of(store, cluster)
        return (
            len(found) == len(published) // 6
            and sum(i.signal_count for i in found) == len(published)
            and all(i.report_version >= 1 for i in found)
        )

    async def play(batch: list[Signal], what: str) -> None:
        published.extend(batch)
        await publisher.publish(batch[: len(batch) // 2])
        await publisher.publish(batch)  # a Watcher replaying after a restart: deduplicated
        await until(settled, timeout=90, what=what, explain=replicas.logs)

    try:
        await play(_signals(workloads[:6], cluster=cluster), "the first Signals stored and diagnosed")
        worked = [r for r in replicas.started if _diagnosed(r)]
        assert worked, replicas.logs()
        # NB: which replica the consumer hands a Signal to is the scheduler's business; what the
        # shared durable consumer promises is that any replica left takes the work. So the ones
        # that worked stop (one stays if all three did), and the rest must handle what comes next.
        stopped = worked[:2]
        assert [r.terminate() for r in stopped] == [0] * len(stopped), replicas.logs()
        left = [r for r in replicas.started if r not in stopped]
        marks = {id(r): len(r.text()) for r in left}
        await play(_signals(workloads[6:], cluster=cluster), "the later Signals handled by the replicas left")
        took_over = [r for r in left if _diagnosed(r, after=marks[id(r)])]
        assert took_over, "a replica left on the durable consumer takes the work\n" + replicas.logs()
        assert len({id(r) for r in (*worked, *took_over)}) >= 2, "the work is not one replica's"

        found = await incidents_of(store, cluster)
        assert len(found) == len(workloads)
        assert sum(i.signal_count for i in found) == len(published), "each Signal stored exactly once"
        for incident in found:
            assert incident.signal_count == 6
            reports = await store.list_reports(incident.id)
            # NB: the empty sim makes every report Unknown; the retries of it (the re-check's, and
            # the one the second occurrence makes) find the same (no) findings and add no version.
            assert [r.version for r in reports] == [1], "one report for one piece of evidence"
            audit = await store.list_audit(incident_id=incident.id)
            assert audit, "the diagnosis' gateway reads are audited under the incident"
    finally:
        codes = replicas.stop_all()
        await store.close()
        await publisher.close()
    assert codes == [0, 0, 0], replicas.logs()
