"""Three member clusters, one central plane, over a real nats-server with per-cluster nkey users.

Each cluster has a failure of its own; each incident must name its cluster, and its diagnosis
must have read that cluster, through that cluster's agent (the audit rows say which cluster each
read went to, and the evidence is that cluster's).
"""

from __future__ import annotations

from typing import Any

from aetherius.store import IncidentFilters
from tests.edge.conftest import Central, Fleet
from tests.waiting import until

FAILURES = {
    "eu-prod": ("crashloop-oom", "OutOfMemory"),
    "us-prod": ("start-failures", None),
    "ap-dev": ("scheduling-storage", None),
}


async def test_three_clusters_each_incident_read_through_its_own_agent(
    fleet: Fleet, central: Central
) -> None:
    for name, (scenario, _) in FAILURES.items():
        await fleet.join(name, scenario=scenario)

    async def diagnosed() -> Any:
        # NB: a cluster's scenario may hold more than one failure, diagnosed in any order: wait
        # for the one each cluster is known by, not for the first report that comes.
        found = {}
        for name, (_, expected) in FAILURES.items():
            page = await central.store.list_incidents(IncidentFilters(cluster_id=name), limit=100)
            with_report = [i for i in page.items if i.root_cause]
            if not with_report or (expected and expected not in {i.root_cause for i in with_report}):
                return None
            found[name] = with_report
        return found

    async def explain() -> str:
        pages = [
            await central.store.list_incidents(IncidentFilters(cluster_id=n), limit=100) for n in FAILURES
        ]
        return "\n".join(
            f"{i.cluster_id} #{i.id} {i.root_cause}: {i.summary}" for p in pages for i in p.items
        )

    try:
        incidents = await until(diagnosed, timeout=60, what="each cluster's failure diagnosed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await explain()}") from None
    roots = {name: {i.root_cause for i in items} for name, items in incidents.items()}
    assert "OutOfMemory" in roots["eu-prod"], roots
    for name, items in incidents.items():
        assert all(i.cluster_id == name for i in items)
        assert not any("agent not connected" in (i.summary or "") for i in items), roots
        audit = await central.store.list_audit(incident_id=int(items[0].id))
        assert audit, f"{name}: the diagnosis read nothing"
        assert {row.cluster_id for row in audit} == {name}, "every read went to the incident's cluster"
