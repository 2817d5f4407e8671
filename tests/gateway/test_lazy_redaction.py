"""The analysis view is not redacted object by object: prove nothing leaks where data leaves.

Secrets' values and env literals are never decoded (on the fast JSON path and the tolerant YAML
path alike); status messages and event text stay raw in memory, and every string of a finding
(summary, evidence, recommendations), every warning and every log line is scrubbed on its way out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
import yaml

from aetherius.diagnosis import diagnose
from aetherius.gateway import MemoryAuditSink, live_gateway, parse_snapshot, snapshot_gateway
from aetherius.kube import KubeClient
from aetherius.sim import SimCluster

NOW = "2026-11-30T10:00:00Z"
SECRET_VALUE = "c3VwZXItc2VjcmV0LXZhbHVl"  # base64 Secret data
ENV_LITERAL = "hunter2-env-literal"
URL_PASSWORD = "Pg-pass-8841"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcHAifQ.c2lnbmF0dXJlLWJ5dGVz"
LEAKS = (SECRET_VALUE, ENV_LITERAL, URL_PASSWORD, TOKEN, "cm-value-not-needed")


def _pod(name: str, *, waiting: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"name": "app", "ready": False, "restartCount": 9 if last else 0}
    status["state"] = {"waiting": waiting}
    if last:
        status["lastState"] = {"terminated": last}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "creationTimestamp": "2026-11-30T08:00:00Z",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": f'{{"env":"{ENV_LITERAL}"}}'},
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.com/shop/app:1.0",
                    "env": [
                        {"name": "DB_PASSWORD", "value": ENV_LITERAL},
                        {"name": "API", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    ],
                    "args": [f"--token={TOKEN}"],
                }
            ],
        },
        "status": {
            "phase": "Pending" if not last else "Running",
            "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-30T09:00:00Z"}
            ],
            "containerStatuses": [status],
        },
    }


def _cluster() -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
        _pod(
            "config",
            waiting={
                "reason": "CreateContainerConfigError",
                "message": f"failed to fetch https://app:{URL_PASSWORD}@config.shop/app.json with Bearer {TOKEN}: "
                'configmap "app-config" not found',
            },
        ),
        _pod(
            "crasher",
            waiting={"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"},
            last={
                "reason": "Error",
                "exitCode": 1,
                "startedAt": "2026-11-30T09:58:00Z",
                "finishedAt": "2026-11-30T09:58:40Z",
                "message": f"token={TOKEN}",
            },
        ),
        {
            "apiVersion": "aetherius.io/v1",
            "kind": "PodLogs",
            "metadata": {"namespace": "shop", "name": "crasher"},
            "container": "app",
            "previous": True,
            "text": f"starting\nFATAL dial postgres://app:{URL_PASSWORD}@db:5432/shop: connection refused\n",
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "db",
                "namespace": "shop",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": f'{{"data":{{"password":"{SECRET_VALUE}"}}}}'
                },
            },
            "type": "Opaque",
            "data": {"password": SECRET_VALUE},
            "stringData": {"other": SECRET_VALUE},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "other", "namespace": "shop"},
            "data": {"setting": "cm-value-not-needed"},
        },
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "crasher.1", "namespace": "shop", "creationTimestamp": NOW},
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "crasher", "uid": "uid-crasher"},
            "reason": "BackOff",
            "message": f"Back-off restarting failed container app, auth token {TOKEN}",
            "type": "Warning",
            "count": 4,
            "lastTimestamp": NOW,
        },
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def _retained(data: bytes) -> bytes:
    state = parse_snapshot(data)
    return orjson.dumps(
        {"objects": state.objects, "logs": {"|".join(map(str, k)): v for k, v in state.logs.items()}}
    )


@pytest.mark.parametrize("form", ["json", "yaml"])
def test_secret_values_and_env_literals_are_never_retained(form: str) -> None:
    cluster = _cluster()
    data = orjson.dumps(cluster) if form == "json" else yaml.safe_dump_all(cluster["items"]).encode()
    state = parse_snapshot(data)
    (secret,) = state.objects["Secret"]
    assert set(secret) <= {"apiVersion", "kind", "metadata", "type"}
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (
        secret["metadata"].get("annotations") or {}
    )
    assert state.objects["ConfigMap"][0]["data"] == {"setting": ""}
    retained = _retained(data)
    assert SECRET_VALUE.encode() not in retained and ENV_LITERAL.encode() not in retained
    assert b"cm-value-not-needed" not in retained


def test_fast_path_keeps_status_text_raw_but_findings_leak_nothing() -> None:
    data = orjson.dumps(_cluster())
    # The analysis view holds status messages as they came (scrubbing 10,000 pods up front was
    # most of a scan's cost) ...
    assert URL_PASSWORD.encode() in _retained(data)


async def test_findings_warnings_and_logs_are_scrubbed_on_the_lazy_path() -> None:
    data = orjson.dumps(_cluster())
    sink = MemoryAuditSink()
    result = await diagnose(snapshot_gateway(parse_snapshot(data), audit=sink))
    by_pod = {f.name: f for f in result.findings if f.kind == "Pod"}
    assert by_pod["config"].root_cause == "MissingConfiguration"
    assert by_pod["crasher"].root_cause == "DependencyUnavailable"
    # ... and what leaves is scrubbed: evidence quoting the message and the log says [REDACTED].
    config_text = " ".join(by_pod["config"].evidence)
    assert "app-config" in config_text and "[REDACTED]" in config_text
    log_lines = [line for line in by_pod["crasher"].evidence if line.startswith("log (")]
    assert log_lines and all("[REDACTED]" in line for line in log_lines)
    out = msgspec.json.encode(result)
    for leak in LEAKS:
        assert leak.encode() not in out, leak
    # Audit bytes are the input's bytes for each object, never a re-serialisation.
    lists = {r.resource: r.bytes for r in sink.records if r.operation == "list"}
    pods = [item for item in _cluster()["items"] if item["kind"] == "Pod"]
    assert lists["Pod"] == sum(len(orjson.dumps(p)) for p in pods)


async def test_live_lazy_path_leaks_nothing_and_audits_bytes_read(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    path.write_bytes(orjson.dumps(_cluster()))
    sink = MemoryAuditSink()
    async with SimCluster(scenario=path) as sim:
        kubeconfig = Path(sim.write_kubeconfig(tmp_path / "kubeconfig"))
        async with await KubeClient.from_kubeconfig(kubeconfig) as client:
            gateway = live_gateway(client, audit=sink)
            result = await diagnose(gateway)
            # An external caller of the gateway gets whole objects, redacted.
            (pod,) = [
                p
                for p in await gateway.list_objects("Pod", requester="t", namespace="shop")
                if p["metadata"]["name"] == "crasher"
            ]
    causes = {f.name: f.root_cause for f in result.findings if f.kind == "Pod"}
    assert causes == {"config": "MissingConfiguration", "crasher": "DependencyUnavailable"}
    out = msgspec.json.encode(result)
    for leak in LEAKS:
        assert leak.encode() not in out, leak
    env = pod["spec"]["containers"][0]["env"]
    assert env[0]["value"] == "[REDACTED]" and env[1]["source"] == "secretKeyRef db/password"
    assert TOKEN not in orjson.dumps(pod).decode()
    pod_lists = [r for r in sink.records if r.operation == "list" and r.resource == "Pod"]
    assert pod_lists and all(r.bytes > 0 for r in pod_lists)
    assert not [r for r in sink.records if r.resource == "Secret"]  # never listed live
