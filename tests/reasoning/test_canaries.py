"""The canary corpus through every tool result, and the names of a cluster met before their objects:
not one reaches the model server, and the answer a person reads has the real names back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml

from aetherius.gateway import MemoryAuditSink, parse_snapshot, snapshot_gateway
from aetherius.reasoning.investigator import Investigator
from aetherius.reasoning.privacy import Pseudonymizer
from tests.reasoning.conftest import INCIDENT, KEY, cluster, make_toolbox
from tests.reasoning.scripted_llm import scripted_llm, text, tool_calls
from tests.reasoning.test_investigator import GOOD_ANSWER, POD

CANARIES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parents[1] / "fixtures" / "secrets" / "canaries.yaml").read_text()
)


def _planted() -> dict[str, Any]:
    doc = cluster("\n".join(c["text"] for c in CANARIES) + "\n")
    pod = doc["items"][0]
    pod["metadata"]["annotations"] = {f"note-{i}": c["text"] for i, c in enumerate(CANARIES)}
    pod["spec"]["containers"][0]["args"] = [c["text"] for c in CANARIES]
    pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = " ".join(
        c["text"] for c in CANARIES
    )
    for i, c in enumerate(CANARIES):
        doc["items"].append(
            {
                "kind": "Event",
                "metadata": {"name": f"canary-{i}", "namespace": "shop"},
                "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "checkout-7f9c"},
                "type": "Warning",
                "reason": "Failed",
                "message": c["text"],
            }
        )
    doc["items"].append(
        {
            "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": "shop"},
            "data": {f"k{i}": c["text"] for i, c in enumerate(CANARIES)},
        }
    )
    return doc


async def test_no_canary_reaches_the_model(investigator_for: Callable[..., Investigator]) -> None:
    gateway = snapshot_gateway(parse_snapshot(orjson.dumps(_planted())), audit=MemoryAuditSink())
    script = [
        tool_calls(
            ("get_object", {"kind": "Pod", "name": POD}),
            ("list_objects", {"kind": "Pod"}),
            ("events_for", {"kind": "Pod", "name": POD}),
            ("pod_logs", {"name": POD, "container": "app", "previous": True, "tail_lines": 500}),
            ("get_object", {"kind": "ConfigMap", "name": "app"}),
            ("incident_findings", {}),
        ),
        text(GOOD_ANSWER),
    ]
    with scripted_llm(script) as llm:
        result = await investigator_for(llm.url, per_tool_output_chars=1_000_000).investigate(
            INCIDENT, make_toolbox(gateway, output_chars=1_000_000)
        )
    assert result.answer.ending == "answered"
    sent = llm.received()
    assert len(result.tool_outputs) == 6 and sum(map(len, result.tool_outputs)) > 10_000
    leaked = [
        c["secret"]
        for c in CANARIES
        if c["secret"] in sent or orjson.dumps(c["secret"]).decode()[1:-1] in sent
    ]
    assert leaked == []


def _names_cluster() -> dict[str, Any]:
    """The incident's pod, a StatefulSet's pod no tool returns before the log names it, and a log
    that names hosts, a namespace and a sibling pod by their DNS and controller shapes."""
    doc = cluster(
        "2026-12-05T10:00:03Z replica db-0 not ready; primary db-1.db.shop.svc.cluster.local\n"
        "2026-12-05T10:00:04Z GET http://payments.shop.svc:8080/x failed; retry payments.shop:5432\n"
        "2026-12-05T10:00:05Z stock from warehouse-db.inventory.svc timed out (namespace inventory)\n"
        "2026-12-05T10:00:06Z checkout-5d8f7b9c4-x2x9z handed over to this pod\n"
    )
    pod = doc["items"][0]
    pod["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "checkout-5d8f7b9c4"}]
    doc["items"] += [
        {"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"}, "spec": {}},
        {
            "kind": "Pod",
            "metadata": {
                "name": "db-0",
                "namespace": "shop",
                "ownerReferences": [{"kind": "StatefulSet", "name": "db"}],
            },
            "spec": {"nodeName": "worker-9"},
            "status": {},
        },
    ]
    return doc


async def test_names_met_first_in_a_log_and_inside_dns_names_do_not_reach_the_model(
    investigator_for: Callable[..., Investigator],
) -> None:
    gateway = snapshot_gateway(parse_snapshot(orjson.dumps(_names_cluster())), audit=MemoryAuditSink())
    p = Pseudonymizer(KEY)
    db0, ns = p.add("pod", "db-0"), p.add("namespace", "shop")
    payments, inventory = p.add("service", "payments"), p.add("namespace", "inventory")
    warehouse, cluster_id = p.add("service", "warehouse-db"), p.add("cluster", INCIDENT.cluster)
    answer = {
        "summary": f"In {cluster_id}, {db0} is not ready and {warehouse}.{inventory}.svc timed out.",
        "root_cause": "CrashLoopBackOff",
        "evidence": [{"claim": "payments down", "quote": f"GET http://{payments}.{ns}.svc:8080/x failed"}],
        "kubectl": [f"kubectl -n {ns} get pod {db0}"],
    }
    script = [
        tool_calls(("pod_logs", {"name": POD, "container": "app", "previous": True})),
        tool_calls(("get_object", {"kind": "Pod", "name": db0})),
        text(answer),
    ]
    with scripted_llm(script) as llm:
        result = await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(gateway))
    assert result.answer.ending == "answered", result.answer.ending_detail
    sent = llm.received()
    real = ["prod-eu", "db-0", "db-1", "shop", "payments", "warehouse-db", "inventory", "checkout-5d8f7b9c4"]
    assert [name for name in real if name in sent] == []
    shown = result.answer
    assert shown.summary == "In prod-eu, db-0 is not ready and warehouse-db.inventory.svc timed out."
    assert (
        shown.evidence[0].quote == "GET http://payments.shop.svc:8080/x failed" and shown.evidence[0].verified
    )
    assert shown.kubectl == ["kubectl -n shop get pod db-0"]
