"""An edge agent killed with SIGKILL in the middle of a burst, then started again.

The agent is the real command (``aetherius agent --mode edge``) with the Secret's token in
``AGENT_TOKEN``. Whatever it had read but central had not acknowledged is read again after the
restart (its cursor only moved with central's acks) and published under the same message ids,
so central stores every Signal once and opens no incident twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aetherius.store import IncidentFilters
from tests.edge.conftest import Central, Fleet
from tests.hub import spawn_agent
from tests.orchestrator.processes import Replica
from tests.waiting import until
from tests.watch.harness import event_obj


def burst_event(i: int) -> dict[str, object]:
    event = event_obj(f"burst-{i}", namespace="shop")
    event["involvedObject"]["name"] = f"pod-{i % PODS}"  # type: ignore[index]
    return event


TOTAL, PODS = 600, 20


@pytest.mark.parametrize("fleet_db", ["postgresql"], indirect=True)
async def test_sigkill_mid_burst_loses_nothing_and_duplicates_no_incident(
    fleet: Fleet, central: Central, tmp_path: Path
) -> None:
    sim = await fleet.sim("burst", None)
    kubeconfig = sim.write_kubeconfig(tmp_path / "burst.kubeconfig")
    token = fleet.hub.add("burst")
    await fleet.hub.reload()
    store = central.store

    async def stored(n: int) -> bool:
        return await store.count_signals(cluster_id="burst") >= n

    created = 0

    async def produce(upto: int) -> None:
        nonlocal created
        while created < upto:
            for _ in range(25):
                sim.create(burst_event(created))
                created += 1
            await asyncio.sleep(0.02)

    first = spawn_agent(tmp_path, hub_url=fleet.hub.url, token=token, kubeconfig=kubeconfig, n=1)
    second: Replica | None = None
    try:
        producer = asyncio.create_task(produce(TOTAL // 2))
        await until(lambda: stored(50), timeout=60, what="the burst flowing", explain=first.text)
        first.kill()  # SIGKILL mid-burst: no flush, no cursor save
        await producer
        assert await store.count_signals(cluster_id="burst") < created, "killed while Signals were in flight"
        await produce(TOTAL)
        second = spawn_agent(tmp_path, hub_url=fleet.hub.url, token=token, kubeconfig=kubeconfig, n=2)
        await until(lambda: stored(TOTAL), timeout=90, what="every Signal stored", explain=second.text)
    finally:
        first.kill()
        if second is not None:
            assert second.terminate() == 0, second.text()[-3000:]
    assert await store.count_signals(cluster_id="burst") == TOTAL
    info = await central.bus.nc.jetstream().stream_info(  # type: ignore[union-attr]
        fleet.hub.bus.stream, subjects_filter=f"{fleet.hub.bus.subject_prefix}.burst.>"
    )
    assert info.state.messages == TOTAL, "what the killed agent had sent was not stored twice"
    page = await store.list_incidents(IncidentFilters(cluster_id="burst"), limit=500)
    workloads = [(i.object_kind, i.object_name) for i in page.items]
    assert len(workloads) == len(set(workloads)), "an incident opened twice"
