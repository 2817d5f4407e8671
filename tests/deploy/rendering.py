"""Render what we ship the way a cluster receives it: kustomize output and the Helm chart.

The chart is rendered by Helm's own template engine (``helm-python-sdk`` binds Helm's Go SDK, no
helm binary, no cluster), so a template that works here works in ``helm install``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "manifests"
CHART = ROOT / "deploy" / "helm" / "aetherius"

Doc = dict[str, Any]


def parse_documents(text: str) -> list[Doc]:
    """Every non-empty YAML document of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_kustomize(path: Path = MANIFESTS) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is required (the CI script installs it)"
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return parse_documents(result.stdout)


def render_chart(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "aetherius",
    namespace: str = "aetherius-system",
) -> list[Doc]:
    """Render the chart as ``helm template`` would, values validated against values.schema.json."""
    chart = helm_python.Chart.load(str(CHART))
    given = dict(values or {})
    chart.validate_schema(chart.merge_values(given))
    rendered = chart.render(given, name=release, namespace=namespace, is_install=True)
    docs: list[Doc] = []
    for name in sorted(rendered):
        if name.endswith(".yaml"):
            docs.extend(parse_documents(rendered[name]))
    return docs


# The value sets every chart check runs on: defaults and the non-default shapes users deploy.
CHART_VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "embedded": {"embedded": {"enabled": True}},
    "no-networkpolicy": {"networkPolicy": {"enabled": False}},
    "no-rbac": {"rbac": {"create": False}, "serviceAccount": {"create": False}},
    # The one opt-in Secret rule (metadata-only reads, list/get on secrets for the orchestrator).
    "secret-metadata": {"rbac": {"orchestrator": {"secretMetadata": True}}},
    # Multi-cluster: the control plane, and a member cluster's edge agent alone.
    "central": {"mode": "central"},
    "edge": {"mode": "edge", "cluster": {"id": "prod-eu-1"}},
    "custom": {
        "cluster": {"id": "prod-us-west-2", "name": "Production US West 2"},
        "image": {"repository": "registry.example.com/aetherius", "tag": "1.2.3"},
        "orchestrator": {"replicas": 3},
        "monitoring": {"serviceMonitor": {"enabled": False}},
        "eventWatcher": {"config": {"namespaces": ["payments", "shop"], "minSeverity": "critical"}},
    },
}


def all_sources() -> Iterator[tuple[str, list[Doc]]]:
    """(name, documents) for the kustomize output and the chart under every value set."""
    yield "kustomize", render_kustomize()
    for name, values in CHART_VALUE_SETS.items():
        yield f"chart-{name}", render_chart(values)


def of_kind(docs: list[Doc], *kinds: str) -> list[Doc]:
    return [doc for doc in docs if doc.get("kind") in kinds]


def pod_specs(docs: list[Doc]) -> list[tuple[str, Doc]]:
    """(workload name, pod spec) of every workload in ``docs``."""
    found: list[tuple[str, Doc]] = []
    for doc in of_kind(docs, "Deployment", "StatefulSet", "DaemonSet", "Job"):
        found.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
    for doc in of_kind(docs, "CronJob"):
        found.append((doc["metadata"]["name"], doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return found
