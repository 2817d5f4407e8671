"""The same scenarios diagnosed live through the simulated cluster (real HTTP, the real client)
give the same findings as from their snapshot files; a scan reads with one LIST per kind and
never writes."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aetherius.diagnosis import diagnose, diagnose_object
from aetherius.diagnosis.capture import capture
from aetherius.gateway import MemoryAuditSink, live_gateway, load_snapshot, snapshot_gateway
from aetherius.gateway.snapshot import SnapshotBackend
from aetherius.kube import KubeClient, ReadOnlyViolation
from aetherius.sim import SimCluster
from tests.scenarios.library import ROOT, expected, live_scenario_names, observed


async def _client(sim: SimCluster, tmp_path: Path) -> KubeClient:
    return await KubeClient.from_kubeconfig(Path(sim.write_kubeconfig(tmp_path / "kubeconfig")))


@asynccontextmanager
async def _live(name: str, tmp_path: Path) -> AsyncIterator[tuple[SimCluster, KubeClient]]:
    async with (
        SimCluster(scenario=ROOT / name / "snapshot.yaml") as sim,
        await _client(sim, tmp_path) as client,
    ):
        yield sim, client


async def _reference(name: str) -> datetime:
    result = await diagnose(snapshot_gateway(ROOT / name / "snapshot.yaml"))
    return datetime.fromisoformat(result.reference_time)


@pytest.mark.parametrize("name", live_scenario_names())
async def test_scenario_live_matches_snapshot(name: str, tmp_path: Path) -> None:
    now = await _reference(name)
    async with _live(name, tmp_path) as (_, client):
        audit = MemoryAuditSink()
        result = await diagnose(live_gateway(client, audit=audit), now=now, scan_id="scan-live")
    got, want = observed(result), expected(name)
    assert got == want, f"missing: {sorted(want - got)}\nunexpected: {sorted(got - want)}"
    lists = Counter(r.resource for r in audit.records if r.operation == "list")
    assert lists and max(lists.values()) == 1, lists  # one LIST per kind, never per object
    assert "Secret" not in lists
    assert {r.operation for r in audit.records} <= {"list", "logs"}
    assert all(r.requester == "scan-live" for r in audit.records)


@pytest.fixture
async def oom_sim() -> AsyncIterator[SimCluster]:
    async with SimCluster(scenario=ROOT / "crashloop-causes" / "snapshot.yaml") as sim:
        yield sim


async def test_a_scan_never_writes(oom_sim: SimCluster, tmp_path: Path) -> None:
    before = oom_sim.resource_version
    async with await _client(oom_sim, tmp_path) as client:
        gateway = live_gateway(client)
        await diagnose(gateway)
        sent = client.requests_sent
        with pytest.raises(ReadOnlyViolation):
            async with client._request("DELETE", "/api/v1/namespaces/shop/pods/billing"):
                pass
        with pytest.raises(ReadOnlyViolation):
            async with client._request("POST", "/api/v1/namespaces/shop/pods"):
                pass
        assert client.requests_sent == sent  # refused before anything went on the wire
    assert oom_sim.resource_version == before
    assert oom_sim.find("Pod", "shop", "billing") is not None


async def test_logs_read_live_are_scrubbed_and_audited(oom_sim: SimCluster, tmp_path: Path) -> None:
    oom_sim.add_logs(
        "shop",
        "mystery",
        "app",
        "FATAL connect postgres://app:Hunt3r2@db:5432/x: connection refused",
        previous=True,
    )
    async with await _client(oom_sim, tmp_path) as client:
        audit = MemoryAuditSink()
        result = await diagnose(live_gateway(client, audit=audit), now=await _reference("crashloop-causes"))
    mystery = next(f for f in result.findings if f.name == "mystery")
    assert mystery.root_cause == "DependencyUnavailable"
    assert not any("Hunt3r2" in line for line in mystery.evidence)
    logs = [r for r in audit.records if r.operation == "logs" and r.name == "mystery"]
    assert logs and logs[0].bytes > 0 and "previous=true" in logs[0].detail


async def test_diagnose_object_reads_only_what_it_needs(tmp_path: Path) -> None:
    async with _live("crashloop-oom", tmp_path) as (_, client):
        audit = MemoryAuditSink()
        result = await diagnose_object(
            live_gateway(client, audit=audit),
            kind="Pod",
            namespace="shop",
            name="api-7d9f8c6b5-x2k4q",
            now=await _reference("crashloop-oom"),
        )
    assert [(f.kind, f.name, f.reason, f.root_cause) for f in result.findings] == [
        ("Deployment", "api", "DeploymentUnavailable", "OutOfMemory"),  # its owner, seen from its pod
        ("Pod", "api-7d9f8c6b5-x2k4q", "CrashLoopBackOff", "OutOfMemory"),
    ]
    assert {r.operation for r in audit.records} <= {"get", "events", "node", "logs"}
    assert sorted(r.resource for r in audit.records if r.operation == "get") == [
        "Deployment",
        "Pod",
        "ReplicaSet",
    ]


async def test_snapshot_capture_round_trips(tmp_path: Path) -> None:
    async with _live("controllers", tmp_path) as (_, client):
        count = await capture(client, tmp_path / "captured.json", cluster="sim")
    assert count > 10
    state = load_snapshot(tmp_path / "captured.json")
    assert state.cluster == "sim" and state.logs
    result = await diagnose(snapshot_gateway(state), now=await _reference("controllers"))
    assert observed(result) == expected("controllers")


async def test_sim_demo_is_diagnosed_with_the_right_root_causes(tmp_path: Path) -> None:
    """Exactly the demo's six failures, their owners' roll-ups and the Services they empty.

    Nothing else: in particular nothing on kube-system (kube-dns selects the coredns pods by
    ``k8s-app=kube-dns``, as in a real cluster) and no healthy workload named.
    """
    async with SimCluster(scenario="demo") as sim:
        sim.timeline.run_to_end()
        async with await _client(sim, tmp_path) as client:
            result = await diagnose(live_gateway(client))
    observed = {
        (f.kind, f.namespace, f.owner.name if f.owner else f.name, f.reason, f.root_cause)
        for f in result.findings
    }
    failures = {
        ("Pod", "shop", "checkout", "CrashLoopBackOff", "OutOfMemory"),
        ("Pod", "shop", "frontend", "ImagePullBackOff", "ImageNotFound"),
        ("Pod", "analytics", "report-builder", "FailedScheduling", "InsufficientResources"),
        ("Pod", "shop", "payments", "CreateContainerConfigError", "MissingConfiguration"),
        ("Pod", "web", "blog", "Unhealthy", "ProbeFailure"),
        ("Pod", "shop", "orders", "CrashLoopBackOff", "DependencyUnavailable"),
    }
    # Broken by design as a consequence: every replica of these is down, so the Deployment is
    # unavailable and its Service has no ready endpoint (frontend keeps ready replicas: neither).
    consequences = {
        ("Deployment", "shop", "checkout", "DeploymentUnavailable", "OutOfMemory"),
        ("Deployment", "shop", "orders", "DeploymentUnavailable", "DependencyUnavailable"),
        ("Deployment", "shop", "payments", "DeploymentUnavailable", "MissingConfiguration"),
        ("Deployment", "analytics", "report-builder", "DeploymentUnavailable", "InsufficientResources"),
        ("Deployment", "web", "blog", "DeploymentUnavailable", "ProbeFailure"),
        ("Service", "shop", "checkout", "ServiceNoEndpoints", "OutOfMemory"),
        ("Service", "shop", "orders", "ServiceNoEndpoints", "DependencyUnavailable"),
        ("Service", "web", "blog", "ServiceNoEndpoints", "ProbeFailure"),
        # …and the blog's Ingress routes to that Service: its visitors get 503.
        ("Ingress", "web", "blog", "IngressBackendUnavailable", "ProbeFailure"),
    }
    assert observed == failures | consequences
    assert not [f for f in result.findings if f.namespace == "kube-system"]
    assert len(result.findings) == len(observed)  # one finding per pod failure: one pod each


async def test_a_captured_snapshot_says_which_kinds_were_read_and_when(tmp_path: Path) -> None:
    """Empty kinds are recorded as read ("none exist" is an answer), and "now" is the capture time.

    The never-silent scenario has Ingress ``web`` and its Service, and no NetworkPolicy: after a
    capture the NetworkPolicies were read (empty), and a kind no one read stays unheld.
    """
    async with _live("never-silent", tmp_path) as (_, client):
        before = datetime.now(UTC)
        await capture(client, tmp_path / "captured.json", cluster="sim")
        after = datetime.now(UTC)
    state = load_snapshot(tmp_path / "captured.json")
    backend = SnapshotBackend(state)
    assert backend.holds("NetworkPolicy") and not state.objects["NetworkPolicy"]
    assert backend.holds("Service") and backend.holds("Pod")
    assert not backend.holds("Secret")  # never listed by a capture: not claimed as read
    captured = datetime.fromisoformat(state.captured_at)
    assert before <= captured <= after
    result = await diagnose(snapshot_gateway(state))
    assert datetime.fromisoformat(result.reference_time) == captured
    # A snapshot without that record still diagnoses, with its newest stamp as "now".
    state.captured_at = ""
    untimed = await diagnose(snapshot_gateway(state))
    assert untimed.reference_time != result.reference_time
