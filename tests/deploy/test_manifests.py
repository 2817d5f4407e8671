"""The plain manifests and the chart say what a deployment needs, as Kubernetes reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from aetherius.config import ConfigError, Settings, load_settings
from tests.deploy.rendering import MANIFESTS, Doc, of_kind, parse_documents

SEED_FILES = [
    "01-namespace.yaml", "02-serviceaccount.yaml", "03-clusterrole.yaml", "04-clusterrolebinding.yaml",
    "05-configmap.yaml", "06-deployment.yaml", "07-service.yaml", "08-servicemonitor.yaml",
    "09-networkpolicy.yaml",
]  # fmt: skip


def write_config(configmap: Doc, directory: Path) -> Path:
    """Lay the ConfigMap out as the kubelet mounts it (one file per key) and return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in configmap["data"].items():
        (directory / key).write_text(value, encoding="utf-8")
    return directory


def load_configmap(docs: list[Doc], directory: Path, *, env: dict[str, str] | None = None) -> Settings:
    configmap = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == "aetherius-config")
    mounted = write_config(configmap, directory)
    return load_settings(config_paths=[mounted / "watcher.yaml"], env=env or {})


def deployment(docs: list[Doc], name: str) -> Doc:
    return next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == name)


def test_the_seed_files_exist_and_kustomize_renders_every_file(kustomized: list[Doc]) -> None:
    listed = (MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8")
    on_disk = sorted(p.name for p in MANIFESTS.glob("[0-9][0-9]-*.yaml"))
    assert set(SEED_FILES) <= set(on_disk)
    expected = 0
    for name in on_disk:
        assert f"- {name}" in listed, f"{name} is not in kustomization.yaml"
        expected += len(parse_documents((MANIFESTS / name).read_text(encoding="utf-8")))
    assert len(kustomized) == expected


def test_the_shipped_configmap_loads_through_the_real_settings_loader(
    kustomized: list[Doc], tmp_path: Path
) -> None:
    settings = load_configmap(kustomized, tmp_path / "etc")
    assert settings.watcher.reason_filters[:3] == ["OOMKilled", "CrashLoopBackOff", "ImagePullBackOff"]
    assert settings.watcher.event_types == ["Warning"]
    assert settings.watcher.min_severity == "warning"
    assert settings.watcher.resync_period.total_seconds() == 1800
    assert settings.message_bus.url == "nats://nats.aetherius-system.svc.cluster.local:4222"
    assert settings.message_bus.reconnect_delay.total_seconds() == 2
    assert (settings.health.port, settings.health.liveness_path) == (8080, "/health/live")
    assert (settings.metrics.port, settings.metrics.path) == (9090, "/metrics")
    assert settings.cluster_id is None, "an empty cluster_id means auto-detect"
    with_id = load_configmap(kustomized, tmp_path / "etc2", env={"CLUSTER_ID": "prod-us-west-2"})
    assert with_id.cluster_id == "prod-us-west-2"


@pytest.mark.parametrize("value_set", ["chart-defaults", "chart-embedded", "chart-custom"])
def test_the_chart_configmap_loads_through_the_real_settings_loader(
    sources: dict[str, list[Doc]], value_set: str, tmp_path: Path
) -> None:
    settings = load_configmap(sources[value_set], tmp_path)
    if value_set == "chart-embedded":
        assert settings.message_bus.url == "memory://"
        assert settings.database.url.endswith("/var/lib/aetherius/aetherius.db")
    if value_set == "chart-custom":
        assert settings.watcher.namespaces == ["payments", "shop"]
        assert settings.watcher.min_severity == "critical"


def test_a_typo_in_the_configmap_is_refused_by_the_loader(kustomized: list[Doc], tmp_path: Path) -> None:
    """The loader check is real: an unknown key in the shipped files would fail it."""
    import copy

    docs = copy.deepcopy(kustomized)
    configmap = next(d for d in of_kind(docs, "ConfigMap"))
    configmap["data"]["watcher.yaml"] += "worker_cout: 5\n"
    with pytest.raises(ConfigError, match="worker_cout: unknown key"):
        load_configmap(docs, tmp_path)


def test_the_event_watcher_deployment_is_the_seeds(kustomized: list[Doc]) -> None:
    watcher = deployment(kustomized, "aetherius-event-watcher")
    assert watcher["spec"]["replicas"] == 1
    assert watcher["spec"]["strategy"] == {"type": "Recreate"}
    template = watcher["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics"
    }  # fmt: skip
    container = template["spec"]["containers"][0]
    assert container["args"] == [
        "watch", "--in-cluster", "--config", "/etc/aetherius/watcher.yaml", "--log-level", "$(LOG_LEVEL)"
    ]  # fmt: skip
    env = {e["name"]: e for e in container["env"]}
    downward = {
        n: env[n]["valueFrom"]["fieldRef"]["fieldPath"]
        for n in ("POD_NAME", "POD_NAMESPACE", "POD_IP", "NODE_NAME")
    }
    assert downward == {
        "POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace",
        "POD_IP": "status.podIP", "NODE_NAME": "spec.nodeName",
    }  # fmt: skip
    assert env["CLUSTER_ID"]["valueFrom"]["configMapKeyRef"] == {
        "name": "aetherius-config", "key": "cluster_id", "optional": True
    }  # fmt: skip
    assert [n for n in env if "DATABASE" in n or "REDIS" in n] == [], "the watcher needs no database"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert template["spec"]["serviceAccountName"] == "aetherius-event-watcher"


def test_every_role_runs_its_subcommand_and_reads_secrets_only_as_env(sources: dict[str, list[Doc]]) -> None:
    expected = {
        "aetherius-event-watcher": ["watch", "--in-cluster", "--config", "/etc/aetherius/watcher.yaml"],
        "aetherius-orchestrator": ["orchestrator", "--in-cluster", "--config", "/etc/aetherius/"],
        "aetherius-api": ["api", "--config", "/etc/aetherius/", "--host", "0.0.0.0"],
    }
    for source in ("kustomize", "chart-defaults"):
        for name, args in expected.items():
            container = deployment(sources[source], name)["spec"]["template"]["spec"]["containers"][0]
            assert container["args"][: len(args)] == args, (source, name)
            refs = [
                e["valueFrom"]["secretKeyRef"]
                for e in container["env"]
                if "secretKeyRef" in e.get("valueFrom", {})
            ]
            if name == "aetherius-event-watcher":
                assert refs == []
            else:
                assert {r["key"] for r in refs} == {"database-url", "redis-url"}
    embedded = deployment(sources["chart-embedded"], "aetherius")
    assert embedded["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "run", "--in-cluster", "--config", "/etc/aetherius/"
    ]  # fmt: skip
    assert len(of_kind(sources["chart-embedded"], "Deployment")) == 1


def test_services_expose_health_and_metrics(sources: dict[str, list[Doc]]) -> None:
    for source in ("kustomize", "chart-defaults"):
        services = {s["metadata"]["name"]: s for s in of_kind(sources[source], "Service")}
        assert set(services) == {"aetherius-event-watcher", "aetherius-orchestrator", "aetherius-api"}
        for service in services.values():
            ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
            assert ports == {"http": 8080, "metrics": 9090}
            workload = next(
                d for d in of_kind(sources[source], "Deployment")
                if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in service["spec"]["selector"].items())
            )  # fmt: skip
            assert workload, f"{service['metadata']['name']} selects no workload"


def _policy(docs: list[Doc], component: str) -> Doc:
    return next(
        d for d in of_kind(docs, "NetworkPolicy")
        if d["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == component
    )  # fmt: skip


def _egress_ports(policy: Doc) -> set[tuple[str, int]]:
    return {
        (p.get("protocol", "TCP"), p["port"])
        for rule in policy["spec"]["egress"]
        for p in rule.get("ports", [])
    }


def test_network_policies_allow_exactly_what_each_role_needs(sources: dict[str, list[Doc]]) -> None:
    dns = {("UDP", 53), ("TCP", 53)}
    api_server = {("TCP", 443), ("TCP", 6443)}
    for source in ("kustomize", "chart-defaults"):
        docs = sources[source]
        assert _egress_ports(_policy(docs, "event-watcher")) == api_server | dns | {("TCP", 4222)}
        assert _egress_ports(_policy(docs, "orchestrator")) == api_server | dns | {
            ("TCP", 4222), ("TCP", 5432), ("TCP", 6379)
        }  # fmt: skip
        assert _egress_ports(_policy(docs, "api")) == dns | {("TCP", 4222), ("TCP", 5432), ("TCP", 6379)}
        for component, allowed in [
            ("event-watcher", {9090}),
            ("orchestrator", {9090}),
            ("api", {8080, 9090}),
        ]:
            policy = _policy(docs, component)
            ingress = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
            assert ingress == allowed, (source, component)
            for rule in policy["spec"]["ingress"]:
                if any(p["port"] == 9090 for p in rule["ports"]):
                    selector = rule["from"][0]["namespaceSelector"]["matchLabels"]
                    assert selector == {"kubernetes.io/metadata.name": "monitoring"}
            dns_rule = next(r for r in policy["spec"]["egress"] if any(p["port"] == 53 for p in r["ports"]))
            assert dns_rule["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert not of_kind(sources["chart-no-networkpolicy"], "NetworkPolicy")


def test_api_server_egress_can_be_pinned_to_cidrs() -> None:
    from tests.deploy.rendering import render_chart

    docs = render_chart({"networkPolicy": {"apiServerCIDRs": ["10.0.0.1/32"]}})
    rule = next(r for r in _policy(docs, "event-watcher")["spec"]["egress"] if r["ports"][0]["port"] == 443)
    assert rule["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
