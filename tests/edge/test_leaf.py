"""The leaf mode end to end: a member cluster's own leaf nats-server keeps its Signals, central's
stream sources them through the leaf connection exactly once, before and after a cut, and
central's gateway reads reach the agent through the same connection.

Every part is real: two nats-servers of the test's own (central's hub with a leafnode listener,
the member's leaf server in domain ``edge-<cluster>``), the edge agent's code over a simulated
cluster, and central's orchestrator storing what its stream gets.
"""

from __future__ import annotations

from typing import Any

import nats
import nats.aio.client
import pytest
from nats.aio.msg import Msg
from pydantic import ValidationError

from aetherius.bus.base import NoResponders
from aetherius.config import Settings
from aetherius.fleet.remote import RemoteBackend
from aetherius.fleet.subjects import ClusterSubjects
from aetherius.orchestrator.clusters import UNREACHABLE
from aetherius.store import NotFound
from tests.edge.conftest import Central, Fleet, Member
from tests.leaf import LeafServer
from tests.waiting import until
from tests.watch.harness import event_obj

BEFORE, DURING = 5, 12


async def _central_copies(fleet: Fleet, central: Central, cluster: str) -> int:
    """How many messages central's stream holds under the cluster's subjects."""
    assert central.bus.nc is not None
    info = await central.bus.nc.jetstream().stream_info(
        fleet.hub.bus.stream, subjects_filter=f"{fleet.hub.bus.subject_prefix}.{cluster}.>"
    )
    return sum((info.state.subjects or {}).values())


async def _local_copies(member: Member) -> int:
    """How many Signals the member's leaf server holds (its own stream, in its own domain)."""
    assert member.bus.nc is not None
    info = await member.bus.nc.jetstream().stream_info(member.bus.stream)
    return int(info.state.messages)


def _source_errors(fleet: Fleet) -> list[str]:
    """What central's server said went wrong with a source (a duplicate id, say): its log."""
    log = (fleet.hub.directory / "nats.log").read_text(encoding="utf-8", errors="replace")
    return [line for line in log.splitlines() if "inbound source" in line]


async def _health(central: Central, cluster: str) -> dict[str, Any]:
    try:
        return dict((await central.store.get_cluster(cluster)).watcher_health)
    except NotFound:
        return {}


async def _leaf_member(fleet: Fleet, central: Central, name: str) -> Member:
    """A leaf member with ``BEFORE`` warning Events, once central stored them and its heartbeat."""
    sim = await fleet.sim(name, None)
    for i in range(BEFORE):
        sim.create(event_obj(f"before-{i}", namespace="shop"))
    member = await fleet.join(name, sim=sim, leaf_domain=f"edge-{name}")

    async def stored() -> bool:
        return await central.store.count_signals(cluster_id=name) >= BEFORE

    await until(stored, timeout=60, what="the leaf member's Signals stored by central")
    await until(lambda: _is(_health(central, name), "ok"), timeout=30, what="the heartbeat across the leaf")
    return member


async def test_signals_reach_central_once_and_reads_cross_the_leaf(fleet: Fleet, central: Central) -> None:
    member = await _leaf_member(fleet, central, "leafy")
    assert await central.store.count_signals(cluster_id="leafy") == BEFORE
    assert await _central_copies(fleet, central, "leafy") == BEFORE, "sourced, never also sent directly"
    assert await _local_copies(member) == BEFORE, "the member's leaf server holds them too"
    assert _source_errors(fleet) == [], "no Signal reached central's stream twice"

    subjects = ClusterSubjects.of("leafy", fleet.hub.bus)
    remote = RemoteBackend(central.bus, subjects=subjects, timeout=10, ping_timeout=5)
    assert await remote.unavailable() is None, "the agent answers a ping through the leaf connection"
    event, _ = await remote.get("Event", namespace="shop", name="before-0")
    assert event is not None and event["metadata"]["name"] == "before-0"


@pytest.mark.parametrize("fleet_db", ["postgresql"], indirect=True)
async def test_a_cut_link_blocks_nothing_and_loses_nothing(fleet: Fleet, central: Central) -> None:
    member = await _leaf_member(fleet, central, "cutleaf")
    store = central.store

    async def stored(n: int) -> bool:
        return await store.count_signals(cluster_id="cutleaf") >= n

    fleet.hub.stop()
    for i in range(DURING):
        member.sim.create(event_obj(f"during-{i}", namespace="shop"))

    async def kept_locally() -> bool:
        return await _local_copies(member) >= BEFORE + DURING

    await until(kept_locally, timeout=60, what="the cut's Signals stored by the member's leaf server")
    watcher = member.agent.watcher
    await until(lambda: watcher.signals_behind() == 0, timeout=30, what="nothing left in the agent's queue")
    assert watcher.stats.published >= BEFORE + DURING, "acknowledged by the leaf server while cut"

    fleet.hub.start()
    await until(
        lambda: _is(_health(central, "cutleaf"), UNREACHABLE), timeout=30, what="the cut shown as unreachable"
    )
    await until(lambda: stored(BEFORE + DURING), timeout=90, what="every Signal of the cut stored by central")
    await until(lambda: _is(_health(central, "cutleaf"), "ok"), timeout=30, what="the agent ok again")
    assert await store.count_signals(cluster_id="cutleaf") == BEFORE + DURING
    assert await _central_copies(fleet, central, "cutleaf") == BEFORE + DURING, "each Signal once"
    assert _source_errors(fleet) == []


async def _is(found: Any, status: str) -> bool:
    return (await found).get("status") == status


async def test_a_direct_member_moved_to_leaf_mode_keeps_flowing(fleet: Fleet, central: Central) -> None:
    """Its new agent relists and sends again what central already has: stored once, and the
    source takes it without an error (nats-server 2.9 retries a source at each id central's
    stream has seen, seconds each: a relist of thousands would hold the new Signals for hours)."""
    sim = await fleet.sim("mover", None)
    for i in range(BEFORE):
        sim.create(event_obj(f"before-{i}", namespace="shop"))
    direct = await fleet.join("mover", sim=sim)
    store = central.store

    async def stored(n: int) -> bool:
        return await store.count_signals(cluster_id="mover") >= n

    await until(lambda: stored(BEFORE), timeout=60, what="the direct member's Signals stored")
    await direct.stop()
    leaf = await fleet.join("mover", sim=sim, leaf_domain="edge-mover")
    await until(lambda: _local_copies(leaf), timeout=60, what="the relisted Signals in the leaf's stream")
    for i in range(DURING):
        sim.create(event_obj(f"after-{i}", namespace="shop"))
    await until(lambda: stored(BEFORE + DURING), timeout=60, what="the leaf member's new Signals stored")
    assert await store.count_signals(cluster_id="mover") == BEFORE + DURING
    assert _source_errors(fleet) == []


async def test_a_leaf_speaks_for_its_own_cluster_only(fleet: Fleet, central: Central) -> None:
    """A leaf server run with cluster a's credential, its clients doing what a's agent never would."""
    hub = fleet.hub
    hub.add("a", leaf_domain="edge-a")
    hub.add("b", leaf_domain="edge-b")
    await hub.reload()
    leaf = LeafServer(fleet.tmp / "leaf-a", hub=hub, credential=hub.credentials["a"], domain="edge-a")
    leaf.start()
    try:
        await fleet.sync_sources()
        attacker = await nats.connect(leaf.url, nkeys_seed_str=hub.credentials["a"].seed)
        try:
            await _pose_as_b(fleet, central, attacker)
        finally:
            await attacker.close()
    finally:
        leaf.stop()


async def _pose_as_b(fleet: Fleet, central: Central, attacker: nats.aio.client.Client) -> None:
    bus = fleet.hub.bus
    a, b = ClusterSubjects.of("a", bus), ClusterSubjects.of("b", bus)
    local = attacker.jetstream()
    await local.add_stream(name=bus.stream, subjects=[f"{bus.subject_prefix}.>"])
    # b's Signals, both into the leaf's own stream (which central sources) and across the link.
    await local.publish(f"{bus.subject_prefix}.b.events", b"forged", headers={"Nats-Msg-Id": "forged-1"})
    await attacker.publish(f"{bus.subject_prefix}.b.events", b"forged")
    # b's gateway queries, and then a's, whose answer reaches central only after all of the above.
    await attacker.subscribe(b.gateway(), cb=_answer(b"as b"))
    await attacker.subscribe(a.gateway(), cb=_answer(b"as a"))
    await local.publish(f"{bus.subject_prefix}.a.events", b"marker", headers={"Nats-Msg-Id": "marker-1"})
    await attacker.flush()

    async def answered_as_a() -> bool:
        try:
            answer = await central.bus.request(
                a.gateway("ping"), b"", timeout=2, reply_prefix=a.gateway_inbox
            )
            return answer == b"as a"
        except (NoResponders, TimeoutError):
            return False

    await until(answered_as_a, timeout=30, what="a's gateway query answered through a's leaf")
    await until(lambda: _central_copies(fleet, central, "a"), timeout=30, what="a's marker sourced")
    assert await _central_copies(fleet, central, "b") == 0, "nothing stored as b, sourced or sent"
    with pytest.raises(NoResponders):
        await central.bus.request(b.gateway("ping"), b"", timeout=5, reply_prefix=b.gateway_inbox)


def _answer(data: bytes) -> Any:
    async def respond(msg: Msg) -> None:
        await msg.respond(data)

    return respond


@pytest.mark.parametrize("domain", ["edge.a", "edge-*", "edge a", "", "x" * 64])
def test_a_bad_leaf_domain_is_a_config_error(domain: str) -> None:
    if not domain:
        assert Settings.model_validate({"fleet": {"leaf_domain": domain}}).fleet.leaf_domain == ""
        return
    with pytest.raises(ValidationError, match=r"fleet\.leaf_domain") as caught:
        Settings.model_validate({"fleet": {"leaf_domain": domain}})
    assert "is not a JetStream domain" in str(caught.value)
