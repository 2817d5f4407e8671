"""Plainly running pods are kept in a slimmer view on the JSON fast path; nothing else may notice.

Whole reads (``get_object``, ``list_objects``) still answer with the full view, a plain pod that
an event is about is analyzed in full, the audit still reports the bytes of each pod, and every
scenario of the library diagnoses the same from JSON (fast path) as its expected findings say.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml

from aetherius.diagnosis import diagnose
from aetherius.gateway import MemoryAuditSink, parse_snapshot, snapshot_gateway
from aetherius.gateway.decode import PlainPod
from tests.scenarios.library import ROOT, expected, expected_warnings, observed, scenario_names

NOW = "2026-11-30T10:00:00Z"
ENV_LITERAL = "hunter2-env-literal"


def _running(name: str, *, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "labels": {"app": "api"},
            "name": name,
            "namespace": "shop",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": f'{{"env":"{ENV_LITERAL}"}}'},
            "creationTimestamp": "2026-11-30T08:00:00Z",
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.com/shop/api:1.0",
                    "env": [{"name": "PASSWORD", "value": ENV_LITERAL}],
                    "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                }
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": conditions
            or [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T08:00:10Z"}],
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": True,
                    "restartCount": 0,
                    "image": "registry.example.com/shop/api:1.0",
                    "state": {"running": {"startedAt": "2026-11-30T08:00:05Z"}},
                }
            ],
        },
    }


def _cluster() -> dict[str, Any]:
    unschedulable = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "lastTransitionTime": "2026-11-30T09:00:00Z",
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
        }
    ]
    items = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-1"},
            "status": {
                "allocatable": {"cpu": "250m", "memory": "1Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
        _running("quiet-1"),
        _running("quiet-2"),
        # Plainly running by its container statuses, yet an event is about it: analyzed in full
        # (its containers' requests are evidence, and only the full view has them).
        _running("evented", conditions=unschedulable),
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "evented.1", "namespace": "shop", "creationTimestamp": NOW},
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "evented"},
            "reason": "FailedScheduling",
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
            "type": "Warning",
            "count": 3,
            "lastTimestamp": NOW,
        },
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


async def test_whole_reads_of_plain_pods_answer_with_the_full_view() -> None:
    cluster = _cluster()
    state = parse_snapshot(orjson.dumps(cluster))
    assert state.plain, "the fast path keeps plainly running pods in the plain view"
    sink = MemoryAuditSink()
    gateway = snapshot_gateway(state, audit=sink)
    pod = await gateway.get_object("Pod", requester="t", namespace="shop", name="quiet-1")
    assert pod is not None
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "registry.example.com/shop/api:1.0"
    assert container["readinessProbe"] == {"httpGet": {"path": "/ready", "port": 8080}}
    listed = await gateway.list_objects("Pod", requester="t", namespace="shop", label_selector="app=api")
    assert sorted(p["metadata"]["name"] for p in listed) == ["evented", "quiet-1", "quiet-2"]
    assert all(p["spec"]["containers"][0]["resources"] for p in listed)
    # Env literals and last-applied annotations stay undecoded on whole reads too.
    out = orjson.dumps([pod, *listed])
    assert ENV_LITERAL.encode() not in out
    # The bytes audited are each pod's bytes in the input, plain view or not.
    pods = [orjson.dumps(item) for item in cluster["items"] if item["kind"] == "Pod"]
    by_op = [(r.operation, r.bytes) for r in sink.records]
    assert by_op == [("get", len(pods[0])), ("list", sum(map(len, pods)))]


async def test_a_plain_pod_with_events_is_analyzed_in_full() -> None:
    cluster = _cluster()
    fast = await diagnose(snapshot_gateway(parse_snapshot(orjson.dumps(cluster))))
    (finding,) = [f for f in fast.findings if f.kind == "Pod"]
    assert (finding.name, finding.reason) == ("evented", "FailedScheduling")
    assert "requests: cpu=500m, memory=128Mi" in finding.evidence
    # The tolerant path (YAML, every object whole) finds exactly the same, word for word.
    tolerant = await diagnose(snapshot_gateway(parse_snapshot(yaml.safe_dump(cluster).encode())))
    assert tolerant.findings == fast.findings


@pytest.mark.parametrize("name", scenario_names())
async def test_every_scenario_diagnoses_the_same_from_json(name: str) -> None:
    docs = [doc for doc in yaml.safe_load_all((ROOT / name / "snapshot.yaml").read_text()) if doc]
    items: list[dict[str, Any]] = []
    for doc in docs:
        if not doc["kind"].endswith("List"):
            items.append(doc)
            continue
        item_kind = doc["kind"][: -len("List")]
        items += [{"kind": item_kind, **item} if item_kind else item for item in doc["items"]]
    # The capture annotations (the snapshot's "now") travel with the merged list.
    metadata = next((doc["metadata"] for doc in docs if doc["kind"] == "List" and doc.get("metadata")), {})
    state = parse_snapshot(
        orjson.dumps({"apiVersion": "v1", "kind": "List", "metadata": metadata, "items": items})
    )
    result = await diagnose(snapshot_gateway(state))
    assert result.warnings == expected_warnings(name), result.warnings
    assert observed(result) == expected(name)
    tolerant = await diagnose(snapshot_gateway(ROOT / name / "snapshot.yaml"))
    assert result.findings == tolerant.findings


def _with(pod: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``pod`` with ``changes`` applied at dotted paths (``status.conditions``, ``metadata.labels``)."""
    pod = orjson.loads(orjson.dumps(pod))
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = pod
        for key in parents:
            target = target[key]
        target[last] = value
    return pod


def _lookalikes() -> dict[str, Any]:
    """Plainly running pods that other kinds' analyzers read (Service, claim, node scope)."""
    not_ready = [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-30T08:00:10Z"}]
    items: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-1"},
            "status": {
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "Unknown",
                        "reason": "NodeStatusUnknown",
                        "lastTransitionTime": NOW,
                    }
                ],
            },
        },
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"}},
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop", "creationTimestamp": "2026-11-30T07:00:00Z"},
            "spec": {"storageClassName": "fast"},
            "status": {"phase": "Pending"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "gated", "namespace": "shop"},
            "spec": {"selector": {"app": "gated"}, "ports": [{"port": 80}]},
        },
        # Containers ready, yet not Ready (a readiness gate): the Service has no ready endpoint.
        _with(_running("gated-1", conditions=not_ready), metadata__labels={"app": "gated"}),
        # Mounts the Pending claim: named as its consumer.
        _with(
            _running("db-0"),
            spec__volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        ),
        # A label value that is not a string: the pod takes the full view.
        _with(_running("odd-labels"), metadata__labels={"app": "api", "replica": 3}),
        # Init container statuses present (even empty): never plain.
        _with(_running("init-empty"), status__initContainerStatuses=[]),
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


async def test_plain_pods_are_read_by_other_analyzers_as_full_pods_are() -> None:
    cluster = _lookalikes()
    state = parse_snapshot(orjson.dumps(cluster))
    views = {
        (pod.metadata.name if isinstance(pod, PlainPod) else pod["metadata"]["name"]): type(pod).__name__
        for pod in state.objects["Pod"]
    }
    assert views == {"gated-1": "PlainPod", "db-0": "PlainPod", "odd-labels": "dict", "init-empty": "dict"}
    fast = await diagnose(snapshot_gateway(state))
    tolerant = await diagnose(snapshot_gateway(parse_snapshot(yaml.safe_dump(cluster).encode())))
    assert fast.findings == tolerant.findings
    by_kind = {(f.kind, f.name): f for f in fast.findings}
    service = by_kind[("Service", "gated")]
    assert (service.reason, service.root_cause) == ("ServiceNoEndpoints", "ProbeFailure")
    assert "1 pods match, 0 ready addresses" in service.evidence
    assert "used by pod(s): db-0" in by_kind[("PersistentVolumeClaim", "data")].evidence
    # The node's finding is in the scope of the namespace of the (plain) pods on it.
    scoped = await diagnose(snapshot_gateway(parse_snapshot(orjson.dumps(cluster))), namespace="shop")
    assert ("Node", "node-1") in {(f.kind, f.name) for f in scoped.findings}
    elsewhere = await diagnose(snapshot_gateway(parse_snapshot(orjson.dumps(cluster))), namespace="billing")
    assert ("Node", "node-1") not in {(f.kind, f.name) for f in elsewhere.findings}
