"""deploy/manifests/edge-agent is the chart's ``mode=edge`` output without Helm's own labels.

``python -m tests.deploy.edge_manifests`` regenerates the directory after a chart change;
tests/deploy/test_multi_cluster.py fails until it has been.
"""

from __future__ import annotations

import copy

import yaml

from tests.deploy.rendering import MANIFESTS, Doc, render_chart

EDGE_MANIFESTS = MANIFESTS / "edge-agent"
HELM_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)
_FILES = {
    "ConfigMap": "configmap.yaml",
    "Deployment": "deployment.yaml",
    "NetworkPolicy": "networkpolicy.yaml",
}
_HEADERS = {
    "rbac.yaml": "# The edge agent's account: the event watcher's (aetherius-event-watcher), read-only. It watches\n"
    "# like the event watcher and answers central's reads like the orchestrator's gateway: both rule sets.\n",
    "configmap.yaml": "# watcher.yaml and app.yaml of the edge agent. No bus url: it dials --central-endpoint.\n",
    "deployment.yaml": "# The edge agent (docs/multi-cluster.md). Set CENTRAL_ENDPOINT to central's NATS URL and create\n"
    "# Secret edge-agent-token first: `aetherius cluster add <name>` on the central side prints it.\n"
    "# No Service and no declared port: it only dials out.\n",
    "networkpolicy.yaml": "# Out to central's NATS (port 4222 on any address: pin it with an ipBlock), the API server\n"
    "# and DNS; nothing in. Kubelet probes come from the node and are allowed by CNIs regardless.\n",
}


def without_helm(doc: Doc, *, image: str = "aetherius/aetherius") -> Doc:
    """``doc`` as the plain manifests carry it: no Helm labels, no checksum, an untagged image."""
    doc = copy.deepcopy(doc)
    for key in HELM_LABELS:
        doc["metadata"].get("labels", {}).pop(key, None)
    if doc["kind"] == "Deployment":
        template = doc["spec"]["template"]
        for key in HELM_LABELS:
            template["metadata"]["labels"].pop(key, None)
        template["metadata"].pop("annotations", None)
        doc["spec"]["selector"]["matchLabels"].pop("app.kubernetes.io/instance")
        template["spec"]["containers"][0]["image"] = image
    if doc["kind"] == "NetworkPolicy":
        doc["spec"]["podSelector"]["matchLabels"].pop("app.kubernetes.io/instance")
    return doc


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def regenerate() -> None:
    files: dict[str, list[Doc]] = {}
    for doc in render_chart({"mode": "edge"}):
        files.setdefault(_FILES.get(doc["kind"], "rbac.yaml"), []).append(without_helm(doc))
    for name, docs in files.items():
        body = "---\n".join(yaml.dump(doc, Dumper=_Dumper, sort_keys=False) for doc in docs)
        (EDGE_MANIFESTS / name).write_text(_HEADERS[name] + body, encoding="utf-8")


if __name__ == "__main__":
    regenerate()
