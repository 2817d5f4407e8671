"""The gateway: a fixed set of reads, each audited, over a snapshot file; no write operation."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from aetherius.gateway import (
    ExecutionGateway,
    MemoryAuditSink,
    SnapshotError,
    UnknownKind,
    parse_snapshot,
    snapshot_gateway,
)

SNAPSHOT = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "kind": "Pod",
            "metadata": {"name": "api-1", "namespace": "shop", "labels": {"app": "api"}},
            "spec": {},
            "status": {},
        },
        {
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {},
            "status": {},
        },
        {
            "kind": "Pod",
            "metadata": {"name": "db-1", "namespace": "data", "labels": {"app": "db"}},
            "spec": {},
            "status": {},
        },
        {
            "kind": "Secret",
            "metadata": {"name": "db-credentials", "namespace": "shop"},
            "type": "Opaque",
            "data": {"password": "aHVudGVyMg=="},
        },
        {
            "kind": "Node",
            "metadata": {"name": "node-1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
        {
            "kind": "Event",
            "metadata": {"name": "e1", "namespace": "shop"},
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "api-1"},
            "reason": "BackOff",
            "message": "pulling with token Bearer abcdefghijklmnop123",
        },
        {
            "apiVersion": "aetherius.io/v1",
            "kind": "PodLogs",
            "metadata": {"namespace": "shop", "name": "api-1"},
            "container": "api",
            "previous": True,
            "text": "line 1\nconnecting postgres://u:pw9999@db\nline 3\n",
        },
        {"kind": "Widget", "metadata": {"name": "ignored"}},
    ],
}

WRITE_WORDS = (
    "create",
    "update",
    "patch",
    "delete",
    "apply",
    "replace",
    "exec",
    "evict",
    "scale",
    "write",
    "post",
    "put",
)


@pytest.fixture
def gateway() -> ExecutionGateway:
    return snapshot_gateway(parse_snapshot(orjson.dumps(SNAPSHOT)), audit=MemoryAuditSink())


async def test_every_read_is_audited_with_its_requester(gateway: ExecutionGateway) -> None:
    sink = gateway.audit
    assert isinstance(sink, MemoryAuditSink)
    pods = await gateway.list_objects("Pod", requester="scan-1", namespace="shop")
    assert sorted(p["metadata"]["name"] for p in pods) == ["api-1", "web-1"]
    assert await gateway.get_object("Pod", requester="scan-1", namespace="shop", name="nope") is None
    events = await gateway.events_for(requester="diag-7", kind="Pod", namespace="shop", name="api-1")
    logs = await gateway.pod_logs(
        requester="diag-7", namespace="shop", name="api-1", container="api", previous=True, tail_lines=2
    )
    node = await gateway.node_state(requester="diag-7", name="node-1")
    assert node is not None and len(events) == 1
    assert logs is not None and logs.splitlines()[0].startswith("connecting") and "pw9999" not in logs
    assert "abcdefghijklmnop123" not in events[0]["message"]
    records = sink.records
    assert [(r.operation, r.resource, r.requester) for r in records] == [
        ("list", "Pod", "scan-1"),
        ("get", "Pod", "scan-1"),
        ("events", "Pod", "diag-7"),
        ("logs", "Pod", "diag-7"),
        ("node", "Node", "diag-7"),
    ]
    assert records[0].bytes > 0 and records[0].namespace == "shop"
    assert records[1].outcome == "not-found" and records[1].name == "nope"
    # Bytes are what was read (the raw tail, before scrubbing), never a re-serialisation.
    raw_tail = "connecting postgres://u:pw9999@db\nline 3"
    assert "pw9999" in raw_tail and raw_tail.replace("pw9999", "[REDACTED]") == logs
    assert "previous=true" in records[3].detail and records[3].bytes == len(raw_tail.encode())


async def test_label_selector_and_unknown_kind(gateway: ExecutionGateway) -> None:
    pods = await gateway.list_objects("Pod", requester="s", label_selector="app in (api,db)")
    assert sorted(p["metadata"]["name"] for p in pods) == ["api-1", "db-1"]
    with pytest.raises(UnknownKind):
        await gateway.list_objects("Widget", requester="s")


async def test_secret_data_never_leaves_even_from_a_snapshot(gateway: ExecutionGateway) -> None:
    secrets = await gateway.list_objects("Secret", requester="s")
    assert secrets == [
        {"kind": "Secret", "metadata": {"name": "db-credentials", "namespace": "shop"}, "type": "Opaque"}
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b'{"kind": "List", "items": [{"kind": "Pod", "metad', "not valid JSON"),
        (b"\x00\x01 not yaml: [unclosed", "neither JSON nor YAML"),
        (b"just some words", "no Kubernetes objects"),
        (b'{"kind": "List", "items": []}', "no Kubernetes objects"),
        (b"- 1\n- 2\n", "no Kubernetes objects"),
    ],
)
def test_not_a_snapshot(data: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        parse_snapshot(data)


def test_malformed_items_are_warnings() -> None:
    state = parse_snapshot(
        orjson.dumps(
            {
                "kind": "List",
                "items": [
                    {"kind": "Pod"},
                    7,
                    {"metadata": {"name": "x"}},
                    {"kind": "Pod", "metadata": {"name": "ok"}},
                ],
            }
        )
    )
    assert len(state.objects["Pod"]) == 1 and len(state.warnings) == 3


def test_events_k8s_io_are_normalized(tmp_path: Path) -> None:
    path = tmp_path / "ev.yaml"
    path.write_text(
        "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: e, namespace: shop}\n"
        "regarding: {kind: Pod, namespace: shop, name: api-1}\nreason: Unhealthy\nnote: Readiness probe failed\n"
        "series: {count: 7, lastObservedTime: '2026-11-30T10:00:00.000000Z'}\n"
    )
    event = snapshot_gateway(path).list_objects
    state = parse_snapshot(path.read_bytes())
    ev = state.objects["Event"][0]
    assert (
        ev["involvedObject"]["name"] == "api-1"
        and ev["count"] == 7
        and ev["message"] == "Readiness probe failed"
    )
    assert callable(event)
