"""The canary corpus through every tool result: not one canary reaches the model server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml

from aetherius.gateway import MemoryAuditSink, parse_snapshot, snapshot_gateway
from aetherius.reasoning.investigator import Investigator
from tests.reasoning.conftest import INCIDENT, cluster, make_toolbox
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
