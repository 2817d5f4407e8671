"""The link to central cut for 20 s while pods break: nothing lost, nothing twice, health said.

Central's nats-server is stopped (the agent and central both lose it) while the member cluster
keeps emitting warning Events. The agent keeps reading into its bounded queue, but its cursor
does not move past what central acknowledged; when the server is back the agent re-publishes
with the same message ids, central stores every Signal once, and the cluster's health went
unreachable and came back ok.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aetherius.orchestrator.clusters import UNREACHABLE
from aetherius.store import NotFound
from tests.edge.conftest import Central, Fleet
from tests.waiting import until
from tests.watch.harness import event_obj

CUT_SECONDS = 20
BEFORE, DURING = 5, 15


@pytest.mark.parametrize("fleet_db", ["postgresql"], indirect=True)
async def test_a_twenty_second_cut_loses_nothing_and_repeats_nothing(fleet: Fleet, central: Central) -> None:
    sim = await fleet.sim("cut", None)
    for i in range(BEFORE):
        sim.create(event_obj(f"before-{i}", namespace="shop"))
    # NB: the agent comes back seconds after the server (its backoff grew during the cut), so
    # central sees its last report go stale before the fresh one arrives.
    member = await fleet.join("cut", sim=sim, reconnect_delay="2s")
    store = central.store

    async def stored(n: int) -> bool:
        return await store.count_signals(cluster_id="cut") >= n

    async def health() -> dict[str, Any]:
        try:
            return dict((await store.get_cluster("cut")).watcher_health)
        except NotFound:
            return {}

    await until(lambda: stored(BEFORE), timeout=30, what="the first Signals stored")
    await until(lambda: _is(health(), "ok"), timeout=30, what="the agent's health recorded ok")
    cursors_at_cut = dict(member.agent.watcher.cursors)
    published_at_cut = member.agent.watcher.stats.published

    loop = asyncio.get_running_loop()
    fleet.hub.stop()
    cut_until = loop.time() + CUT_SECONDS
    for i in range(DURING):
        sim.create(event_obj(f"during-{i}", namespace="shop"))

    async def queued() -> bool:
        return member.agent.watcher.signals_behind() > 0

    await until(queued, timeout=CUT_SECONDS, what="the cut's Signals read into the agent's queue")
    # NB: the cut's length is the fault under test, not a wait for something to happen.
    await asyncio.sleep(max(0.0, cut_until - loop.time()))
    events_cursor = [k for k in cursors_at_cut if k.startswith("events")]
    assert events_cursor and all(
        member.agent.watcher.cursors[k] == cursors_at_cut[k] for k in events_cursor
    ), "the Events cursor moved past Signals central never acknowledged"
    assert member.agent.watcher.stats.published == published_at_cut, "nothing acknowledged while cut"
    assert member.agent.watcher.signals_behind() > 0, "the cut's Signals wait in the agent's queue"

    fleet.hub.start()
    await until(lambda: _is(health(), UNREACHABLE), timeout=30, what="the cut shown as unreachable")
    await until(lambda: stored(BEFORE + DURING), timeout=60, what="every Signal of the cut stored")
    await until(lambda: _is(health(), "ok"), timeout=30, what="the agent ok again")

    assert await store.count_signals(cluster_id="cut") == BEFORE + DURING
    js = central.bus.nc.jetstream() if central.bus.nc is not None else None
    assert js is not None
    info = await js.stream_info(fleet.hub.bus.stream, subjects_filter=f"{fleet.hub.bus.subject_prefix}.cut.>")
    assert info.state.messages == BEFORE + DURING, (
        "re-published with the same ids: deduplicated by the server"
    )


async def _is(found: Any, status: str) -> bool:
    return (await found).get("status") == status
