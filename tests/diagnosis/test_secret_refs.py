"""Missing Secrets referenced by pods and Ingresses: the same findings live and from a snapshot.

Live, Secrets are not read by default (no RBAC for them, by design): the finding rests on the
kubelet's and the ingress controller's own words and says the existence was not checked. With
metadata-only Secret reads enabled, the live scan checks existence like a snapshot does, and not
one byte of Secret data crosses the wire (the sim's record of what it sent proves it).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from aetherius.diagnosis import diagnose
from aetherius.diagnosis.context import SECRETS_NOT_CHECKED
from aetherius.diagnosis.model import DiagnosisResult, Finding
from aetherius.gateway import MemoryAuditSink, SecretsNotRead, live_gateway, snapshot_gateway
from aetherius.kube import KubeClient
from aetherius.sim import SimCluster

SECRET_VALUE = "c3VwZXItc2VjcmV0LXBhc3N3b3Jk"  # base64 Secret data that must never travel
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
CREATED = "2026-11-30T09:40:00Z"


def _pod(name: str, uid: str, *, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": "shop", "uid": uid, "creationTimestamp": CREATED}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _event(name: str, involved: dict[str, str], reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "shop"},
        "involvedObject": {"namespace": "shop", **involved},
        "reason": reason,
        "type": "Warning",
        "message": message,
        "count": 7,
        "lastTimestamp": "2026-11-30T09:58:00Z",
    }


def _state() -> list[dict[str, Any]]:
    api_env = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}
    ]
    waiting = {"reason": "CreateContainerConfigError", "message": 'secret "db-credentials" not found'}
    return [
        _pod(
            "api",
            "2b000000-0000-4000-8000-000000000001",
            spec={
                "nodeName": "node-1",
                "containers": [{"name": "api", "image": "shop/api:1", "env": api_env}],
            },
            status={
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "api",
                        "image": "shop/api:1",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": waiting},
                    }
                ],
            },
        ),
        _pod(
            "web",
            "2b000000-0000-4000-8000-000000000002",
            spec={
                "nodeName": "node-1",
                "containers": [
                    {"name": "web", "image": "shop/web:1", "envFrom": [{"secretRef": {"name": "other"}}]}
                ],
                "volumes": [{"name": "tls", "secret": {"secretName": "web-tls"}}],
            },
            status={"phase": "Pending"},
        ),
        _event(
            "web.1",
            {"kind": "Pod", "name": "web", "uid": "2b000000-0000-4000-8000-000000000002"},
            "FailedMount",
            'MountVolume.SetUp failed for volume "tls" : secret "web-tls" not found',
        ),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "shop", "namespace": "shop", "creationTimestamp": CREATED},
            "spec": {
                "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                "rules": [
                    {
                        "host": "shop.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "storefront", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "storefront", "namespace": "shop", "creationTimestamp": CREATED},
            "spec": {"selector": {"app": "storefront"}, "ports": [{"port": 80}]},
        },
        _event(
            "shop.1",
            {"kind": "Ingress", "name": "shop"},
            "Sync",
            'Error syncing to GCP: error running load balancer syncing routine: secrets "shop-tls" not found',
        ),
    ]


SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "other", "namespace": "shop", "labels": {"app": "web"}},
    "type": "Opaque",
    "data": {"password": SECRET_VALUE},
}


def _write(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


Row = tuple[str, str, str, str, str, tuple[str, ...], tuple[str, ...]]


def row(f: Finding) -> Row:
    """A finding's content, without its identity (what two diagnoses of one object compare)."""
    return (
        f.reason,
        f.root_cause,
        f.severity,
        f.summary,
        f.container or "",
        tuple(f.evidence),
        tuple(f.recommendations),
    )


def _rows(result: DiagnosisResult) -> dict[tuple[str, str], Row]:
    return {
        (f.kind, f.name): row(f)
        for f in result.findings
        if (f.kind, f.name) in {("Pod", "api"), ("Pod", "web"), ("Ingress", "shop")}
    }


async def _live(
    scenario: Path, tmp_path: Path, *, secret_metadata: bool
) -> tuple[DiagnosisResult, MemoryAuditSink, list[Any]]:
    async with SimCluster(scenario=scenario) as sim:
        sent = sim.record_responses("/api/v1/")
        async with await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig")) as client:
            audit = MemoryAuditSink()
            gateway = live_gateway(client, audit=audit, secret_metadata=secret_metadata)
            result = await diagnose(gateway, now=NOW)
    return result, audit, [s for s in sent if "/secrets" in s.path]


async def test_default_live_reads_no_secret_and_names_the_missing_one_from_kubelet_evidence(
    tmp_path: Path,
) -> None:
    scenario = _write(tmp_path / "cluster.yaml", [*_state(), SECRET])  # the cluster has a Secret
    result, audit, secret_responses = await _live(scenario, tmp_path, secret_metadata=False)
    live = _rows(result)
    assert secret_responses == []  # not one request for Secrets reached the server
    assert not [r for r in audit.records if r.resource == "Secret"]

    # the snapshot path, from a capture with no Secrets in it (what a default capture holds)
    snapshot = await diagnose(snapshot_gateway(_write(tmp_path / "snap.yaml", _state())), now=NOW)
    assert live == _rows(snapshot)

    api, web, ingress = live[("Pod", "api")], live[("Pod", "web")], live[("Ingress", "shop")]
    assert api[:2] == ("CreateContainerConfigError", "MissingConfiguration")
    assert "Secret db-credentials" in api[3] and SECRETS_NOT_CHECKED in api[5]
    assert web[:2] == ("FailedMount", "MissingConfiguration")
    assert 'secret "web-tls" not found' in " ".join(web[5]) and SECRETS_NOT_CHECKED in web[5]
    assert ingress[:2] == ("IngressMisconfigured", "MissingReference")
    tls = [line for line in ingress[5] if line.startswith("tls secretName=shop-tls")]
    assert tls and 'secrets "shop-tls" not found' in tls[0]  # the controller's own words
    assert SECRETS_NOT_CHECKED in ingress[5]


async def test_metadata_only_secret_reads_check_existence_and_carry_no_data(tmp_path: Path) -> None:
    scenario = _write(tmp_path / "cluster.yaml", [*_state(), SECRET])
    result, audit, secret_responses = await _live(scenario, tmp_path, secret_metadata=True)
    live = _rows(result)

    assert [r.resource for r in audit.records].count("Secret") == 1  # one LIST, like every kind
    assert secret_responses, "the Secrets LIST reached the server"
    for sent in secret_responses:
        assert "as=PartialObjectMetadataList" in sent.accept and sent.status == 200
        assert b'"kind":"PartialObjectMetadataList"' in sent.body and b'"other"' in sent.body
        assert SECRET_VALUE.encode() not in sent.body and b'"data"' not in sent.body

    # the same findings as a snapshot holding the Secrets' metadata
    snapshot = await diagnose(snapshot_gateway(scenario), now=NOW)
    assert live == _rows(snapshot)
    api, web, ingress = live[("Pod", "api")], live[("Pod", "web")], live[("Ingress", "shop")]
    assert api[1] == "MissingConfiguration" and SECRETS_NOT_CHECKED not in api[5]
    assert "no Secret named db-credentials in namespace shop (Secrets' metadata checked)" in api[5]
    assert "no Secret named web-tls in namespace shop (Secrets' metadata checked)" in web[5]
    assert "tls secretName=shop-tls: no such Secret" in ingress[5] and SECRETS_NOT_CHECKED not in ingress[5]


async def test_a_live_secret_read_is_refused_before_the_wire_when_not_enabled(tmp_path: Path) -> None:
    async with SimCluster(scenario=_write(tmp_path / "c.yaml", [SECRET])) as sim:
        sent = sim.record_responses("/api/v1/")
        async with await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig")) as client:
            gateway = live_gateway(client)
            before = client.requests_sent
            with pytest.raises(SecretsNotRead, match="no RBAC by design"):
                await gateway.list_objects("Secret", requester="t")
            with pytest.raises(SecretsNotRead):
                await gateway.get_object("Secret", requester="t", namespace="shop", name="other")
            assert client.requests_sent == before and sent == []
            # enabled: the object read is metadata-only too
            enabled = live_gateway(client, secret_metadata=True)
            obj = await enabled.get_object("Secret", requester="t", namespace="shop", name="other")
            assert obj == {"kind": "Secret", "metadata": {**obj["metadata"], "name": "other"}}
            assert obj["metadata"]["labels"] == {"app": "web"}
            assert await enabled.get_object("Secret", requester="t", namespace="shop", name="nope") is None
    assert [s.accept for s in sent if s.status == 200] == [
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    ]
    assert all(SECRET_VALUE.encode() not in s.body for s in sent)


def test_the_cli_flag_turns_metadata_only_reads_on(tmp_path: Path) -> None:
    handle = SimCluster.start_in_thread(_write(tmp_path / "cluster.yaml", [*_state(), SECRET]))
    try:
        config = handle.write_kubeconfig(tmp_path / "kubeconfig")
        outputs = {}
        for flag in ((), ("--secret-metadata",)):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "aetherius",
                    "diagnose",
                    "--kubeconfig",
                    str(config),
                    "-o",
                    "json",
                    *flag,
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            outputs[flag] = done.stdout
    finally:
        handle.stop()
    assert SECRET_VALUE not in "".join(outputs.values())
    assert SECRETS_NOT_CHECKED in outputs[()] and "Secrets' metadata checked" not in outputs[()]
    on = outputs[("--secret-metadata",)]
    assert SECRETS_NOT_CHECKED not in on and "no Secret named db-credentials in namespace shop" in on
