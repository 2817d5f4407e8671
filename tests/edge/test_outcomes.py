"""What central sees when a member cluster cannot answer, and what an agent may not claim.

- no agent at all: the report says the agent is not connected, after one ping and no read;
- an agent that never answers: the diagnosis respects the gateway timeout and says so;
- a Signal whose payload names another cluster than its subject: dead-lettered, counted, no incident;
- the Events watch expires (410): one ``WatchGap`` Signal, and its incident says Events may be missing.
"""

from __future__ import annotations

from typing import Any

import nats
import pytest
from prometheus_client import REGISTRY

from aetherius.fleet.identity import parse_token
from aetherius.fleet.protocol import GatewayReply, encode
from aetherius.fleet.subjects import ClusterSubjects
from aetherius.signals import Signal, encode_signal
from aetherius.store import IncidentFilters
from tests.edge.conftest import Central, Fleet
from tests.orchestrator.factories import pod_signal
from tests.waiting import until


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def gateway_timeout() -> str:
    """Short here: these tests wait for the timeout itself."""
    return "3s"


async def _publish(central: Central, signals: list[Signal]) -> None:
    await central.bus.publish(signals)


async def _incident_summary(central: Central, cluster: str) -> Any:
    page = await central.store.list_incidents(IncidentFilters(cluster_id=cluster), limit=10)
    done = [i for i in page.items if i.summary]
    return done[0] if done else None


async def test_no_agent_makes_the_diagnosis_say_so_without_reading(fleet: Fleet, central: Central) -> None:
    fleet.hub.add("lonely")
    await fleet.hub.reload()
    before = _metric(
        "aetherius_remote_gateway_requests_total", cluster="lonely", op="ping", outcome="no_responders"
    )
    await _publish(
        central, [pod_signal(reason="OOMKilled", rs="api-5f6d", pod="api-5f6d-abcde", cluster="lonely")]
    )
    incident = await until(
        lambda: _incident_summary(central, "lonely"), timeout=30, what="the incident's report"
    )
    assert "cluster lonely agent not connected" in incident.summary
    assert incident.root_cause == "Unknown"
    after = _metric(
        "aetherius_remote_gateway_requests_total", cluster="lonely", op="ping", outcome="no_responders"
    )
    assert after == before + 1, "one ping, answered at once by the server's no-responders status"
    assert await central.store.list_audit(incident_id=int(incident.id)) == [], "nothing was read"

    await fleet.join("lonely", scenario=None)

    async def read_after_return() -> Any:
        found = await central.store.get_incident(int(incident.id))
        return found if "agent not connected" not in (found.summary or "") else None

    again = await until(read_after_return, timeout=30, what="the incident diagnosed when its agent came")
    assert again.report_version == incident.report_version + 1
    assert await central.store.list_audit(incident_id=int(incident.id)), "read through the agent this time"


async def test_a_silent_agent_is_given_up_on_at_the_gateway_timeout(fleet: Fleet, central: Central) -> None:
    token = fleet.hub.add("slow")
    await fleet.hub.reload()
    cluster, seed = parse_token(token)
    subjects = ClusterSubjects.of(cluster, fleet.hub.bus)
    nc = await nats.connect(fleet.hub.url, nkeys_seed_str=seed, inbox_prefix=subjects.inbox_prefix)
    heard: list[str] = []

    async def answer_pings_only(msg: Any) -> None:
        heard.append(msg.subject)
        if msg.subject.endswith(".ping"):
            await msg.respond(encode(GatewayReply(cluster=cluster)))
        # every read is left unanswered: a wedged agent

    await nc.subscribe(subjects.gateway(), cb=answer_pings_only)
    try:
        await _publish(
            central, [pod_signal(reason="OOMKilled", rs="api-5f6d", pod="api-5f6d-abcde", cluster="slow")]
        )
        incident = await until(
            lambda: _incident_summary(central, "slow"), timeout=60, what="the incident's report"
        )
    finally:
        await nc.close()
    assert any(s.endswith(".get") or s.endswith(".list") for s in heard), heard
    audit = await central.store.list_audit(incident_id=int(incident.id))
    assert audit and all("did not answer" in row.outcome for row in audit), [r.outcome for r in audit]
    assert "did not answer" in incident.summary and "within 3 s" in incident.summary, incident.summary


async def test_a_payload_naming_another_cluster_is_dead_lettered(fleet: Fleet, central: Central) -> None:
    token = fleet.hub.add("honest")
    fleet.hub.add("victim")
    await fleet.hub.reload()
    cluster, seed = parse_token(token)
    before = _metric("aetherius_bus_dead_lettered_total", cause="cluster_mismatch")
    lie = pod_signal(reason="OOMKilled", rs="db-1a2b", pod="db-1a2b-xyzab", cluster="victim")
    nc = await nats.connect(
        fleet.hub.url,
        nkeys_seed_str=seed,
        inbox_prefix=ClusterSubjects.of(cluster, fleet.hub.bus).inbox_prefix,
    )
    js = nc.jetstream()
    # NB: its own subject (the server allows it), a payload that names the victim.
    await js.publish(f"{fleet.hub.bus.subject_prefix}.honest.watcher", encode_signal(lie), timeout=5)
    await nc.close()

    async def counted() -> bool:
        return _metric("aetherius_bus_dead_lettered_total", cause="cluster_mismatch") > before

    await until(counted, timeout=30, what="the lie dead-lettered")
    for name in ("honest", "victim"):
        page = await central.store.list_incidents(IncidentFilters(cluster_id=name), limit=10)
        assert not page.items, f"no incident for {name}"
    assert await central.store.count_signals(cluster_id="victim") == 0


async def test_an_expired_events_watch_is_one_watch_gap(fleet: Fleet, central: Central) -> None:
    member = await fleet.join("gappy", scenario=None)
    await until(lambda: _async(member.agent.watcher.synced), timeout=30, what="the agent's initial list")
    member.sim.faults.gone_on_connect(1)
    member.sim.faults.close_watches()

    async def gap() -> Any:
        page = await central.store.list_incidents(IncidentFilters(cluster_id="gappy"), limit=10)
        return [i for i in page.items if i.reason == "WatchGap" and i.summary]

    gaps = await until(gap, timeout=30, what="the WatchGap incident")
    assert len(gaps) == 1 and gaps[0].signal_count == 1
    assert "may be missing" in gaps[0].summary
    assert gaps[0].object_kind == "Cluster" and gaps[0].object_name == "gappy"


async def _async(value: bool) -> bool:
    return value
