"""The engine diagnoser and the health re-check, live against the demo sim, kept in a real store.

Every demo failure, played on the sim's timeline, is diagnosed through the Execution Gateway: the
right root cause, evidence, and every read of the cluster audited under the incident.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aetherius.gateway import LiveBackend
from aetherius.gateway.readers import ClusterReaders
from aetherius.kube import KubeClient
from aetherius.orchestrator.diagnose import EngineDiagnoser, GatewayHealthProbe
from aetherius.orchestrator.model import Incident
from aetherius.orchestrator.storage import StoreRepository
from aetherius.signals import ObjectRef
from aetherius.sim import SimCluster
from aetherius.store import Store, migrate
from aetherius.store.engine import create_engine, resolve_url

DEMO_FAILURES = [
    ("shop", "checkout", "CrashLoopBackOff", "OutOfMemory"),
    ("shop", "frontend", "ErrImagePull", "ImageNotFound"),
    ("analytics", "report-builder", "FailedScheduling", "InsufficientResources"),
    ("shop", "payments", "CreateContainerConfigError", "MissingConfiguration"),
    ("web", "blog", "Unhealthy", "ProbeFailure"),
    ("shop", "orders", "CrashLoopBackOff", "DependencyUnavailable"),
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_engine(resolve_url(url))
    await migrate.upgrade(engine)
    await engine.dispose()
    opened = await Store.open(url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[tuple[SimCluster, KubeClient]]:
    async with SimCluster("demo") as sim:
        sim.timeline.advance(90)
        client = await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig"))
        try:
            yield sim, client
        finally:
            await client.close()


def incident(namespace: str, name: str, reason: str, *, incident_id: str, objects: list[str]) -> Incident:
    now = datetime.now(UTC)
    return Incident(
        id=incident_id,
        cluster_id="demo",
        fingerprint=f"fp-{name}",
        workload=ObjectRef(kind="Deployment", namespace=namespace, name=name),
        state="open",
        severity="warning",
        reason=reason,
        objects=objects,
        signal_count=1,
        first_seen=now,
        last_seen=now,
    )


async def test_each_demo_failure_diagnosed_live_with_audited_reads(
    store: Store, kube: tuple[SimCluster, KubeClient]
) -> None:
    _sim, client = kube
    repository = StoreRepository(store)
    diagnoser = EngineDiagnoser(
        ClusterReaders.single(LiveBackend(client, cluster="demo"), cluster_id=None), repository=repository
    )
    for number, (namespace, name, reason, root_cause) in enumerate(DEMO_FAILURES, start=1):
        found = incident(namespace, name, reason, incident_id=str(number), objects=[])
        report = await diagnoser.diagnose(found, diagnosis_id=f"diag-{number}")
        assert report.root_cause == root_cause, (name, report)
        assert report.evidence, name
        assert all(f["root_cause"] == root_cause for f in report.findings), report.findings
        audit = await store.list_audit(incident_id=number)
        assert audit and {a.scan_id for a in audit} == {f"diag-{number}"}
        assert {a.operation for a in audit} >= {"get", "list"}


async def test_a_gone_workload_falls_back_to_the_newest_pod_and_then_reports_unknown(
    store: Store, kube: tuple[SimCluster, KubeClient]
) -> None:
    sim, client = kube
    pod = next(
        p["metadata"]["name"] for p in sim.list("Pod", "shop") if p["metadata"]["name"].startswith("checkout")
    )
    diagnoser = EngineDiagnoser(
        ClusterReaders.single(LiveBackend(client), cluster_id=None), repository=StoreRepository(store)
    )
    renamed = incident("shop", "checkout-old", "OOMKilled", incident_id="7", objects=[f"Pod/shop/{pod}"])
    report = await diagnoser.diagnose(renamed, diagnosis_id="diag-7")
    assert report.root_cause == "OutOfMemory", "diagnosed from the pod a Signal named"
    assert {f["name"] for f in report.findings} == {pod}
    report = await diagnoser.diagnose(
        incident("shop", "nothing-here", "OOMKilled", incident_id="8", objects=["Pod/shop/nothing-here-x"]),
        diagnosis_id="diag-8",
    )
    assert report.root_cause == "Unknown" and report.findings == []
    assert "no failure" in report.summary
    assert len(await store.list_audit(incident_id=8)) == 2, (
        "the workload, then the pod: both read, both audited"
    )


async def test_health_probe_reads_through_the_gateway(
    store: Store, kube: tuple[SimCluster, KubeClient]
) -> None:
    _sim, client = kube
    probe = GatewayHealthProbe(
        ClusterReaders.single(LiveBackend(client), cluster_id=None), repository=StoreRepository(store)
    )
    assert await probe.healthy(incident("shop", "cart", "Unhealthy", incident_id="11", objects=[])) is True
    assert (
        await probe.healthy(incident("shop", "checkout", "OOMKilled", incident_id="12", objects=[])) is False
    )
    assert await probe.healthy(incident("shop", "deleted", "OOMKilled", incident_id="13", objects=[])) is True
    assert [a.outcome for a in await store.list_audit(incident_id=13)] == ["not-found"]
    foreign = GatewayHealthProbe(
        ClusterReaders.single(LiveBackend(client), cluster_id="other"), repository=StoreRepository(store)
    )
    assert await foreign.healthy(incident("shop", "cart", "Unhealthy", incident_id="14", objects=[])) is None


async def test_an_alert_about_nothing_and_a_namespace_alert_get_reports(
    store: Store, kube: tuple[SimCluster, KubeClient]
) -> None:
    """An accepted alert always ends in a report: alert-level with no object, the namespace's
    failures for a namespace alert."""
    _sim, client = kube
    diagnoser = EngineDiagnoser(
        ClusterReaders.single(LiveBackend(client, cluster="demo"), cluster_id=None),
        repository=StoreRepository(store),
    )
    about_nothing = incident("", "x", "WatchdogMissing", incident_id="9", objects=[])
    about_nothing.workload = ObjectRef(kind="Alert", name="WatchdogMissing")
    report = await diagnoser.diagnose(about_nothing, diagnosis_id="diag-9")
    assert report.root_cause == "Unknown" and "names no pod" in report.summary and report.recommendations
    assert await store.list_audit(incident_id=9) == [], "nothing to read, nothing read"

    namespace_alert = incident("", "shop", "KubePodCrashLooping", incident_id="10", objects=[])
    namespace_alert.workload = ObjectRef(kind="Namespace", name="shop")
    report = await diagnoser.diagnose(namespace_alert, diagnosis_id="diag-10")
    assert report.findings and {f["namespace"] for f in report.findings} == {"shop"}
    assert report.root_cause != "Unknown"


async def test_an_incident_of_another_cluster_is_never_diagnosed_against_this_one(
    store: Store, kube: tuple[SimCluster, KubeClient]
) -> None:
    _sim, client = kube
    diagnoser = EngineDiagnoser(
        ClusterReaders.single(LiveBackend(client, cluster="demo"), cluster_id="demo"),
        repository=StoreRepository(store),
    )
    foreign = incident("shop", "checkout", "OOMKilled", incident_id="11", objects=[])
    foreign.cluster_id = "prod-eu"
    report = await diagnoser.diagnose(foreign, diagnosis_id="diag-11")
    assert report.root_cause == "Unknown" and "no reader for cluster 'prod-eu'" in report.summary
    assert await store.list_audit(incident_id=11) == []
    own = incident("shop", "checkout", "OOMKilled", incident_id="12", objects=[])
    assert (await diagnoser.diagnose(own, diagnosis_id="diag-12")).root_cause == "OutOfMemory"
