"""``diagnose_object`` on a Pod reads the ConfigMaps and Secrets it references, so its findings
about the pod are the full scan's: the same on every scenario of the library, live through the sim.

Secrets are read (metadata only, one audited GET each) only when the gateway has metadata-only
Secret reads on; otherwise none is asked for and the evidence keeps saying existence was not
checked. The references read are bounded, and a failed read is a warning, never a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aetherius.diagnosis import diagnose, diagnose_object
from aetherius.diagnosis.chains import root_of
from aetherius.diagnosis.context import SECRETS_NOT_CHECKED
from aetherius.diagnosis.model import DiagnosisResult
from aetherius.diagnosis.scope import MAX_REFERENCES, config_references
from aetherius.gateway import MemoryAuditSink, live_gateway, snapshot_gateway
from aetherius.kube import KubeClient
from aetherius.sim import SimCluster
from tests.diagnosis.test_secret_refs import NOW, Row, _pod, _write, row
from tests.scenarios.library import ROOT, live_scenario_names


def _pod_findings(result: DiagnosisResult, namespace: str, name: str) -> list[Row]:
    return sorted(
        row(f) for f in result.findings if (f.kind, f.namespace, f.name) == ("Pod", namespace, name)
    )


@asynccontextmanager
async def _client(sim: SimCluster, tmp_path: Path) -> AsyncIterator[KubeClient]:
    async with await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig")) as client:
        yield client


@pytest.mark.parametrize("scenario", live_scenario_names())
async def test_a_pod_diagnosed_alone_gets_the_full_scans_findings(scenario: str, tmp_path: Path) -> None:
    path = ROOT / scenario / "snapshot.yaml"
    full = await diagnose(snapshot_gateway(path))
    now = datetime.fromisoformat(full.reference_time)
    pods = sorted({(f.namespace, f.name) for f in full.findings if f.kind == "Pod"})
    differing = []
    async with SimCluster(scenario=path) as sim, _client(sim, tmp_path) as client:
        # NB: metadata-only Secret reads on, as a snapshot holds Secrets' metadata.
        gateway = live_gateway(client, secret_metadata=True)
        for namespace, name in pods:
            alone = await diagnose_object(gateway, kind="Pod", namespace=namespace, name=name, now=now)
            want, got = _pod_findings(full, namespace, name), _pod_findings(alone, namespace, name)
            if got != want:
                differing.append(f"{namespace}/{name}:\n  full scan: {want}\n  alone:     {got}")
    assert not differing, "\n".join(differing)


_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@pytest.mark.parametrize("scenario", live_scenario_names())
async def test_a_workload_diagnosed_alone_gets_the_full_scans_finding(scenario: str, tmp_path: Path) -> None:
    """Read by name what its template references: the default RBAC may get ConfigMaps, not list them."""
    path = ROOT / scenario / "snapshot.yaml"
    full = await diagnose(snapshot_gateway(path))
    now = datetime.fromisoformat(full.reference_time)
    wanted = [f for f in full.findings if f.kind in _WORKLOAD_KINDS]
    differing = []
    async with SimCluster(scenario=path) as sim, _client(sim, tmp_path) as client:
        audit = MemoryAuditSink()
        gateway = live_gateway(client, secret_metadata=True, audit=audit)
        for want in wanted:
            alone = await diagnose_object(
                gateway, kind=want.kind, namespace=want.namespace, name=want.name, now=now
            )
            got = [row(f) for f in alone.findings if (f.kind, f.name) == (want.kind, want.name)]
            if got != [row(want)]:
                differing.append(
                    f"{want.kind} {want.namespace}/{want.name}:\n  full: {row(want)}\n  alone: {got}"
                )
            assert not [w for w in alone.warnings if "not read" in w], alone.warnings
    assert not differing, "\n".join(differing)
    lists = {r.resource for r in audit.records if r.operation == "list"}
    assert "ConfigMap" not in lists and "Secret" not in lists


def test_the_library_has_pods_that_reference_configuration() -> None:
    """The parity above covers the references this change reads (not a vacuous pass)."""
    text = (ROOT / "start-failures" / "snapshot.yaml").read_text()
    assert "configMapKeyRef: {name: catalog-config" in text


def test_references_come_from_every_place_a_pod_spec_names_them() -> None:
    ref = {"configMapKeyRef": {"name": "init-cm", "key": "k"}}
    spec = {
        "initContainers": [
            {"name": "init", "env": [{"name": "X", "valueFrom": ref}, {"name": "Y", "value": "v"}]}
        ],
        "containers": [
            {
                "name": "app",
                "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "p"}}}],
                "envFrom": [{"configMapRef": {"name": "from-cm"}}, {"secretRef": {"name": "from-secret"}}],
            }
        ],
        "volumes": [
            {"name": "a", "configMap": {"name": "vol-cm"}},
            {"name": "b", "secret": {"secretName": "vol-secret"}},
            {
                "name": "c",
                "projected": {
                    "sources": [
                        {"configMap": {"name": "init-cm"}},
                        {"secret": {"name": "proj-secret"}},
                        {"serviceAccountToken": {"path": "t"}},
                    ]
                },
            },
            {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
        ],
        "imagePullSecrets": [{"name": "pull"}, {"name": "env-secret"}],
    }
    assert config_references(spec) == (
        ["init-cm", "from-cm", "vol-cm"],
        ["env-secret", "from-secret", "vol-secret", "proj-secret", "pull"],
    )
    assert config_references({"containers": "not a list", "volumes": [None, {"secret": "x"}]}) == ([], [])


# --- live: a missing ConfigMap key, a missing Secret -------------------------------------------


def _config_error(
    name: str, uid: str, container: dict[str, Any], message: str, **spec: Any
) -> dict[str, Any]:
    """A pod whose one container waits in CreateContainerConfigError with the kubelet's message."""
    waiting = {"reason": "CreateContainerConfigError", "message": message}
    status = {"name": container["name"], "image": container["image"], "ready": False, "restartCount": 0}
    return _pod(
        name,
        uid,
        spec={"nodeName": "node-1", "containers": [container], **spec},
        status={"phase": "Pending", "containerStatuses": [{**status, "state": {"waiting": waiting}}]},
    )


def _configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop"},
        "data": data,
    }


def _cluster() -> list[dict[str, Any]]:
    catalog_env = [
        {
            "name": "LOG_LEVEL",
            "valueFrom": {"configMapKeyRef": {"name": "catalog-config", "key": "log-level"}},
        }
    ]
    api_env = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}
    ]
    return [
        _config_error(
            "catalog",
            "2c000000-0000-4000-8000-000000000001",
            {"name": "catalog", "image": "shop/catalog:2", "env": catalog_env},
            "couldn't find key log-level in ConfigMap shop/catalog-config",
            volumes=[{"name": "extra", "configMap": {"name": "catalog-extra"}}],  # exists
        ),
        _config_error(
            "api",
            "2c000000-0000-4000-8000-000000000002",
            {
                "name": "api",
                "image": "shop/api:1",
                "env": api_env,
                "envFrom": [{"configMapRef": {"name": "api-settings"}}],  # does not exist
            },
            'secret "db-credentials" not found',
            imagePullSecrets=[{"name": "registry-pull"}],  # exists
        ),
        _configmap("catalog-config", {"loglevel": "debug", "cache-ttl": "30s"}),
        _configmap("catalog-extra", {"extra.yaml": "a: 1"}),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "registry-pull", "namespace": "shop"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": "e30="},
        },
    ]


async def _alone(
    sim: SimCluster, tmp_path: Path, name: str, *, secret_metadata: bool
) -> tuple[DiagnosisResult, MemoryAuditSink]:
    audit = MemoryAuditSink()
    async with _client(sim, tmp_path) as client:
        gateway = live_gateway(client, audit=audit, secret_metadata=secret_metadata)
        result = await diagnose_object(
            gateway, kind="Pod", namespace="shop", name=name, scan_id=f"scan-{name}", now=NOW
        )
    return result, audit


def _evidence(result: DiagnosisResult, name: str) -> list[str]:
    return [line for f in result.findings if f.name == name for line in f.evidence]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimCluster]:
    async with SimCluster(scenario=_write(tmp_path / "cluster.yaml", _cluster())) as cluster:
        yield cluster


async def test_a_missing_configmap_key_is_shown_with_the_keys_the_configmap_has(
    sim: SimCluster, tmp_path: Path
) -> None:
    result, audit = await _alone(sim, tmp_path, "catalog", secret_metadata=False)
    assert "ConfigMap catalog-config keys: cache-ttl, loglevel" in _evidence(result, "catalog")
    gets = sorted((r.resource, r.name, r.outcome) for r in audit.records if r.operation == "get")
    assert gets == [
        ("ConfigMap", "catalog-config", "ok"),
        ("ConfigMap", "catalog-extra", "ok"),
        ("Pod", "catalog", "ok"),
    ]
    assert {r.requester for r in audit.records} == {"scan-catalog"}
    assert not result.warnings


@pytest.mark.parametrize("secret_metadata", [False, True])
async def test_a_missing_secret_is_checked_only_with_metadata_reads_on(
    sim: SimCluster, tmp_path: Path, secret_metadata: bool
) -> None:
    sent = sim.record_responses("/api/v1/")
    result, audit = await _alone(sim, tmp_path, "api", secret_metadata=secret_metadata)
    evidence = _evidence(result, "api")
    assert [f.root_cause for f in result.findings if f.name == "api"] == ["MissingConfiguration"]
    gets = sorted((r.resource, r.name, r.outcome) for r in audit.records if r.operation == "get")
    secret_responses = [s for s in sent if "/secrets" in s.path]
    if secret_metadata:
        assert SECRETS_NOT_CHECKED not in evidence
        assert "no Secret named db-credentials in namespace shop (Secrets' metadata checked)" in evidence
        assert gets == [
            ("ConfigMap", "api-settings", "not-found"),
            ("Pod", "api", "ok"),
            ("Secret", "db-credentials", "not-found"),
            ("Secret", "registry-pull", "ok"),
        ]
        # NB: the sim records the responses it answers, not its errors (the 404 of db-credentials).
        assert [s.path.rsplit("/", 1)[1] for s in secret_responses] == ["registry-pull"]
        for response in secret_responses:
            assert "as=PartialObjectMetadata;" in response.accept
            assert b'"kind":"PartialObjectMetadata"' in response.body and b'"data"' not in response.body
    else:
        assert SECRETS_NOT_CHECKED in evidence
        assert gets == [("ConfigMap", "api-settings", "not-found"), ("Pod", "api", "ok")]
        assert secret_responses == []  # registry-pull exists: a read of it would be answered
    assert {r.requester for r in audit.records} == {"scan-api"}


async def test_a_failed_configuration_read_is_a_warning(sim: SimCluster, tmp_path: Path) -> None:
    sim.faults.error(status=403, path_prefix="/api/v1/namespaces/shop/configmaps/catalog-config")
    result, _ = await _alone(sim, tmp_path, "catalog", secret_metadata=False)
    assert [f.root_cause for f in result.findings if f.name == "catalog"] == ["MissingConfiguration"]
    assert not any("keys:" in line for line in _evidence(result, "catalog"))
    assert [w for w in result.warnings if "catalog-config" in w and "403" in w]


async def test_a_failed_secret_read_leaves_existence_unchecked(sim: SimCluster, tmp_path: Path) -> None:
    """Not read is not missing: with one Secret unread no absence is claimed of any."""
    sim.faults.error(status=403, path_prefix="/api/v1/namespaces/shop/secrets/registry-pull")
    result, _ = await _alone(sim, tmp_path, "api", secret_metadata=True)
    assert SECRETS_NOT_CHECKED in _evidence(result, "api")
    assert [w for w in result.warnings if "registry-pull" in w]


async def test_an_unscheduled_pod_is_compared_with_every_node(tmp_path: Path) -> None:
    """Its scheduling advice names the largest node; with Nodes unreadable it claims nothing of them."""
    path = ROOT / "scheduling-storage" / "snapshot.yaml"
    async with SimCluster(scenario=path) as sim, _client(sim, tmp_path) as client:
        audit = MemoryAuditSink()
        gateway = live_gateway(client, audit=audit)
        read = await diagnose_object(
            gateway, kind="Pod", namespace="data", name="analytics", scan_id="scan-a"
        )
        (finding,) = [f for f in read.findings if f.name == "analytics"]
        assert any("the largest node allocates" in line for line in finding.recommendations)
        assert ("list", "Node") in {(r.operation, r.resource) for r in audit.records}
        sim.faults.error(status=403, path_prefix="/api/v1/nodes")
        unread = await diagnose_object(gateway, kind="Pod", namespace="data", name="analytics")
    (finding,) = [f for f in unread.findings if f.name == "analytics"]
    assert (finding.reason, finding.root_cause) == ("FailedScheduling", "InsufficientResources")
    assert not any("node offers" in line or "largest node" in line for line in finding.recommendations)
    assert [w for w in unread.warnings if w.startswith("Node not read") and "403" in w]


# --- the bound --------------------------------------------------------------------------------


async def test_references_past_the_bound_are_counted_not_read(tmp_path: Path) -> None:
    extra = 3
    count = MAX_REFERENCES + extra
    volumes = [{"name": f"cm-{i}", "configMap": {"name": f"cm-{i}"}} for i in range(count)]
    volumes += [{"name": f"s-{i}", "secret": {"secretName": f"s-{i}"}} for i in range(count)]
    # the same ConfigMap again, from env and a projected volume: one read
    env = [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-0", "key": "a"}}}]
    volumes.append({"name": "proj", "projected": {"sources": [{"configMap": {"name": "cm-1"}}]}})
    pod = _pod(
        "wide",
        "2c000000-0000-4000-8000-000000000003",
        spec={
            "nodeName": "node-1",
            "containers": [{"name": "app", "image": "app:1", "env": env}],
            "volumes": volumes,
        },
        status={"phase": "Running"},
    )
    async with SimCluster(scenario=_write(tmp_path / "wide.yaml", [pod])) as sim:
        result, audit = await _alone(sim, tmp_path, "wide", secret_metadata=True)
    reads = [(r.resource, r.name) for r in audit.records if r.operation == "get" and r.resource != "Pod"]
    assert sorted(reads) == sorted(
        [("ConfigMap", f"cm-{i}") for i in range(MAX_REFERENCES)]
        + [("Secret", f"s-{i}") for i in range(MAX_REFERENCES)]
    )
    skipped = [w for w in result.warnings if "not read" in w and "bound" in w]
    assert len(skipped) == 2, result.warnings
    assert any(f"{extra} ConfigMaps" in w for w in skipped) and any(f"{extra} Secrets" in w for w in skipped)


async def test_a_pod_diagnosed_alone_follows_its_dependency_to_the_root(tmp_path: Path) -> None:
    """orders cannot reach postgres.db.svc:5432: diagnosed alone (what an incident does), it reads
    that Service and the pods behind it, and its chain ends at postgres-0, OOM-killed — as in the
    full scan. invoices names a ClusterIP: one LIST of Services finds which one."""
    path = ROOT / "chain-database" / "snapshot.yaml"
    full = await diagnose(snapshot_gateway(path))
    now = datetime.fromisoformat(full.reference_time)
    async with SimCluster(scenario=path) as sim, _client(sim, tmp_path) as client:
        for namespace, name in (("shop", "orders-5c6d7-a1b2c"), ("billing", "invoices-7f8e9-g5h6i")):
            audit = MemoryAuditSink()
            alone = await diagnose_object(
                live_gateway(client, audit=audit), kind="Pod", namespace=namespace, name=name, now=now
            )
            by_key = {f.key(): f for f in alone.findings}
            pod = by_key[("Pod", namespace, name, "CrashLoopBackOff")]
            assert pod.caused_by is not None and pod.caused_by.name == "postgres"
            root = root_of(pod, by_key)
            assert (root.kind, root.namespace, root.name, root.root_cause) == (
                "Pod",
                "db",
                "postgres-0",
                "OutOfMemory",
            )
            reads = {(r.operation, r.resource, r.namespace) for r in audit.records}
            assert ("get", "Service", "db") in reads and ("list", "Pod", "db") in reads
            assert all(r.resource != "Secret" for r in audit.records)


async def test_a_ready_pod_asked_about_has_its_current_log_read(tmp_path: Path) -> None:
    """A live scan reads only the logs of containers that died; a pod diagnosed alone is worth its
    current log, where the errors it keeps logging while Ready show (as from the snapshot)."""
    path = ROOT / "errors-in-running-logs" / "snapshot.yaml"
    full = await diagnose(snapshot_gateway(path))
    now = datetime.fromisoformat(full.reference_time)
    async with SimCluster(scenario=path) as sim, _client(sim, tmp_path) as client:
        audit = MemoryAuditSink()
        gateway = live_gateway(client, audit=audit)
        for name, cause in (
            ("syncer-6b7d9-k2j4h", "PermissionDenied"),
            ("checkout-5d8f7-q9w2e", "DependencyUnavailable"),
        ):
            alone = await diagnose_object(gateway, kind="Pod", namespace="ops", name=name, now=now)
            assert _pod_findings(alone, "ops", name) == _pod_findings(full, "ops", name)
            assert [(f.reason, f.root_cause) for f in alone.findings] == [("ErrorsInLogs", cause)]
        quiet = await diagnose_object(gateway, kind="Pod", namespace="ops", name="search-1", now=now)
        assert quiet.findings == []  # one timeout in an hour is weather
    assert {r.operation for r in audit.records if r.name == "search-1"} >= {"get", "logs"}
