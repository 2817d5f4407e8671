"""``mode: central`` and ``mode: edge`` of the chart, and the plain edge-agent manifests.

The edge agent is the one docs/multi-cluster.md describes: ``--mode=edge
--central-endpoint=$(CENTRAL_ENDPOINT)``, its token from Secret edge-agent-token, 64Mi/50m
requested and 128Mi/100m at most; it opens no port and may only dial central, the API server and
DNS. The default (in-cluster) renders exactly what it did before modes existed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import helm_python
import pytest

from aetherius.fleet.registry import Registry
from tests.deploy.edge_manifests import EDGE_MANIFESTS, without_helm
from tests.deploy.rendering import Doc, of_kind, render_chart, render_kustomize
from tests.deploy.test_manifests import deployment, load_configmap
from tests.deploy.test_posture import posture_problems
from tests.deploy.test_rbac import allows, rbac_problems, rules_of

EDGE_RESOURCES = {"requests": {"memory": "64Mi", "cpu": "50m"}, "limits": {"memory": "128Mi", "cpu": "100m"}}
DNS = {("UDP", 53), ("TCP", 53)}
API_SERVER = {("TCP", 443), ("TCP", 6443)}


def _kinds(docs: list[Doc]) -> list[tuple[str, str]]:
    return sorted((d["kind"], d["metadata"]["name"]) for d in docs)


def _edge_sources() -> dict[str, list[Doc]]:
    return {"chart": render_chart({"mode": "edge"}), "kustomize": render_kustomize(EDGE_MANIFESTS)}


@pytest.fixture(scope="module")
def edge_sources() -> dict[str, list[Doc]]:
    return _edge_sources()


def test_in_cluster_is_the_default_and_unchanged() -> None:
    assert render_chart({}) == render_chart({"mode": "in-cluster"})


def test_edge_renders_the_agent_its_read_only_account_and_its_policy_only(
    edge_sources: dict[str, list[Doc]],
) -> None:
    expected = [
        ("ClusterRole", "aetherius-edge-agent"),
        ("ClusterRoleBinding", "aetherius-edge-agent"),
        ("ConfigMap", "aetherius-config"),
        ("Deployment", "aetherius-edge-agent"),
        ("NetworkPolicy", "aetherius-edge-agent"),
        ("Role", "aetherius-edge-agent-config"),
        ("RoleBinding", "aetherius-edge-agent-config"),
        ("ServiceAccount", "aetherius-event-watcher"),
    ]
    assert _kinds(edge_sources["chart"]) == expected
    assert _kinds(edge_sources["kustomize"]) == sorted([*expected, ("Namespace", "aetherius-system")])


def test_the_edge_agent_is_the_spec_s(edge_sources: dict[str, list[Doc]]) -> None:
    for source, docs in edge_sources.items():
        agent = deployment(docs, "aetherius-edge-agent")
        pod = agent["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"][:3] == ["agent", "--mode=edge", "--central-endpoint=$(CENTRAL_ENDPOINT)"]
        env = {e["name"]: e for e in container["env"]}
        assert env["AGENT_TOKEN"]["valueFrom"] == {
            "secretKeyRef": {"name": "edge-agent-token", "key": "token"}
        }
        assert env["CENTRAL_ENDPOINT"]["value"] == "tls://nats.central.example.com:4222"
        assert container["resources"] == EDGE_RESOURCES, source
        assert "ports" not in container, f"{source}: the edge agent declares no port"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["serviceAccountName"] == "aetherius-event-watcher"
        assert agent["spec"]["replicas"] == 1 and agent["spec"]["strategy"] == {"type": "Recreate"}
        assert not of_kind(docs, "Service", "ServiceMonitor", "Ingress"), source
        assert posture_problems(docs) == [], source


def test_the_edge_agent_is_read_only_in_its_cluster(edge_sources: dict[str, list[Doc]]) -> None:
    for source, docs in edge_sources.items():
        assert rbac_problems(docs) == [], source
        rules = rules_of(docs, "aetherius-event-watcher")
        assert allows(rules, verb="watch", resource="events") and allows(
            rules, verb="get", resource="pods/log"
        )
        assert allows(rules, verb="get", resource="configmaps", name="aetherius-config")
        assert not allows(rules, verb="list", resource="configmaps")
        assert not allows(rules, verb="get", resource="secrets"), "the token reaches it as env, not by API"


def _egress(policy: Doc) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}


def test_the_edge_policy_allows_nothing_in_and_only_central_api_and_dns_out(
    edge_sources: dict[str, list[Doc]],
) -> None:
    for source, docs in edge_sources.items():
        (policy,) = of_kind(docs, "NetworkPolicy")
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert policy["spec"]["ingress"] == [], source
        assert _egress(policy) == API_SERVER | DNS | {("TCP", 4222)}, source
    pinned = render_chart(
        {
            "mode": "edge",
            "edge": {
                "centralEndpoint": "nats://central.example.com:7422",
                "centralCIDRs": ["203.0.113.7/32"],
            },
            "networkPolicy": {"apiServerCIDRs": ["10.0.0.1/32"]},
        }
    )
    (policy,) = of_kind(pinned, "NetworkPolicy")
    assert _egress(policy) == API_SERVER | DNS | {("TCP", 7422)}
    central_rule = next(
        r for r in policy["spec"]["egress"] if r["ports"] == [{"protocol": "TCP", "port": 7422}]
    )
    assert central_rule["to"] == [{"ipBlock": {"cidr": "203.0.113.7/32"}}]
    api_rule = next(r for r in policy["spec"]["egress"] if r["ports"][0]["port"] == 443)
    assert api_rule["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]


def test_the_plain_edge_manifests_are_the_chart_s(edge_sources: dict[str, list[Doc]]) -> None:
    """Regenerate with ``python -m tests.deploy.edge_manifests`` when this fails after a chart change."""

    def key(doc: Doc) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    chart = sorted(
        (without_helm(d, image="aetherius/aetherius:0.1.0") for d in edge_sources["chart"]), key=key
    )
    plain = sorted((d for d in edge_sources["kustomize"] if d["kind"] != "Namespace"), key=key)
    assert plain == chart


def test_the_edge_configuration_loads_and_opens_no_metrics_port(
    edge_sources: dict[str, list[Doc]], tmp_path: Path
) -> None:
    for source, docs in edge_sources.items():
        settings = load_configmap(docs, tmp_path / source)
        assert settings.metrics.enabled is False
        assert settings.message_bus.max_reconnect_attempts == -1
        assert settings.fleet.leaf_domain == "", "the direct mode unless asked"


def test_edge_leaf_domain_puts_the_agent_in_leaf_mode(tmp_path: Path) -> None:
    values = {
        "mode": "edge",
        "edge": {
            "centralEndpoint": "nats://aetherius-leaf.aetherius-system:4222",
            "leafDomain": "edge-prod-1",
        },
    }
    settings = load_configmap(render_chart(values), tmp_path)
    assert settings.fleet.leaf_domain == "edge-prod-1"
    with pytest.raises(helm_python.HelmValuesError, match="leafDomain"):
        render_chart({"mode": "edge", "edge": {"leafDomain": "edge.prod"}})


def test_central_renders_the_control_plane_and_the_nats_configuration() -> None:
    docs = render_chart({"mode": "central"})
    names = {d["metadata"]["name"] for d in of_kind(docs, "Deployment")}
    assert names == {"aetherius-orchestrator", "aetherius-api"}, "no watcher: members report through edges"
    for name in names:
        container = deployment(docs, name)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["AETHERIUS_NATS_NKEY_SEED"]["valueFrom"] == {
            "secretKeyRef": {"name": "aetherius-nats-central", "key": "seed"}
        }
    assert "aetherius-central-nats" in {c["metadata"]["name"] for c in of_kind(docs, "ConfigMap")}
    assert rbac_problems(docs) == [] and posture_problems(docs) == []


@pytest.mark.parametrize("leafnodes", [0, 7422])
def test_central_nats_configuration_runs_with_the_users_file_cluster_add_writes(
    tmp_path: Path, leafnodes: int
) -> None:
    binary = shutil.which("nats-server")
    assert binary is not None, "nats-server is required"
    nats = {"jetstream": {"storeDir": str(tmp_path / "js")}, "leafnodes": {"port": leafnodes}}
    docs = render_chart({"mode": "central", "central": {"nats": nats}})
    config = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "aetherius-central-nats")
    text = config["data"]["nats.conf"]
    assert 'include "users/users.conf"' in text
    assert ("leafnodes {" in text) == bool(leafnodes)
    # Laid out as the pod mounts it: the ConfigMap's file, the users Secret in users/ beside it.
    registry = Registry(tmp_path / "users")
    registry.add("prod-eu-1")
    registry.add("prod-us-1", leaf_domain="edge-prod-us-1")
    (tmp_path / "nats.conf").write_text(text)
    result = subprocess.run(
        [binary, "-c", str(tmp_path / "nats.conf"), "-t"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "hub"}, "/mode"),
        ({"mode": "edge", "edge": {"centralEndpoint": "https://central.example.com"}}, "centralEndpoint"),
        ({"mode": "edge", "edge": {"centralEndpoint": "nats://central.example.com"}}, "centralEndpoint"),
        ({"mode": "edge", "embedded": {"enabled": True}}, "embedded"),
        ({"mode": "central", "nodeAgent": {"enabled": True}}, "nodeAgent"),
        ({"mode": "edge", "edge": {"tokenSecret": "Edge_Token"}}, "tokenSecret"),
        ({"edge": {"replicas": 2}}, "replicas"),
    ],
)
def test_the_schema_refuses_bad_multi_cluster_values(values: Doc, message: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=message):
        render_chart(values)
