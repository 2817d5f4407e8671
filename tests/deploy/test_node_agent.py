"""The node agent's DaemonSet and RBAC, read from what we ship: the kustomize directory
``deploy/manifests/node-agent`` and the chart with ``nodeAgent.enabled`` (off by default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aetherius.config import load_settings
from tests.deploy.rendering import MANIFESTS, Doc, of_kind, render_chart, render_kustomize
from tests.deploy.test_posture import posture_problems
from tests.deploy.test_rbac import allows, rbac_problems, rules_of

SOURCES = {
    "kustomize": lambda: render_kustomize(MANIFESTS / "node-agent"),
    "chart": lambda: render_chart({"nodeAgent": {"enabled": True}}),
}
_WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}


@pytest.fixture(params=sorted(SOURCES), scope="module")
def docs(request: pytest.FixtureRequest) -> list[Doc]:
    return SOURCES[request.param]()  # type: ignore[no-any-return]


def test_off_by_default_in_the_chart_and_the_default_kustomization() -> None:
    for rendered in (render_chart({}), render_kustomize()):
        assert not [d for d in rendered if "node-agent" in d["metadata"]["name"]]


def test_rbac_reads_stats_never_proxies_and_writes_nothing(docs: list[Doc]) -> None:
    assert not rbac_problems(docs), rbac_problems(docs)
    rules = rules_of(docs, "aetherius-node-agent")
    assert allows(rules, verb="get", resource="nodes/stats") and allows(
        rules, verb="get", resource="nodes/metrics"
    )
    assert allows(rules, verb="get", resource="pods") and not allows(rules, verb="list", resource="pods")
    for rule in rules:
        assert "nodes/proxy" not in rule["resources"] and "*" not in rule["resources"], rule
        assert not set(rule["verbs"]) & _WRITE_VERBS, rule
        assert not any(r.startswith("secrets") for r in rule["resources"]), rule


def test_the_daemonset_is_the_spec_s(docs: list[Doc]) -> None:
    (daemonset,) = of_kind(docs, "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["hostNetwork"] is True and pod["tolerations"] == [{"operator": "Exists"}]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert env["NODE_NAME"] == "spec.nodeName" and env["NODE_IP"] == "status.hostIP"
    assert container["resources"] == {
        "requests": {"memory": "64Mi", "cpu": "50m"},
        "limits": {"memory": "128Mi", "cpu": "100m"},
    }
    ctx = container["securityContext"]
    assert ctx["privileged"] is False and ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert host_paths == {"varlog": "/var/log"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["varlog"]["readOnly"] is True
    assert container["args"][:3] == ["agent", "--mode", "node"]


def test_only_the_documented_exceptions_to_the_restricted_profile(docs: list[Doc]) -> None:
    """hostNetwork and the read-only hostPath, nothing else; its namespace says so."""
    problems = posture_problems(docs)
    assert problems == [
        "aetherius-node-agent: uses host namespaces",
        "aetherius-node-agent: volume varlog is hostPath/secret",
    ], problems
    (namespace,) = of_kind(docs, "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    (daemonset,) = of_kind(docs, "DaemonSet")
    assert daemonset["metadata"]["namespace"] == namespace["metadata"]["name"] != "aetherius-system"


def test_its_configuration_loads(docs: list[Doc], tmp_path: Path) -> None:
    (configmap,) = [c for c in of_kind(docs, "ConfigMap") if "node-agent" in c["metadata"]["name"]]
    path = tmp_path / "app.yaml"
    path.write_text(configmap["data"]["app.yaml"])
    settings = load_settings(config_paths=[path], env={})
    assert settings.node_agent.kernel_logs == ["/host/var/log/kern.log"]
    assert settings.node_agent.poll_interval.total_seconds() == 10
