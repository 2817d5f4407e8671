"""The chart keeps its conventional values keys and renders every mode through Helm's own engine."""

from __future__ import annotations

import helm_python
import pytest
import yaml

from tests.deploy.rendering import CHART, Doc, of_kind, render_chart


def test_the_chart_keeps_the_seeds_metadata_and_values_keys() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert (chart["apiVersion"], chart["name"], chart["type"]) == ("v2", "aetherius", "application")
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert values["cluster"] == {"id": "", "name": ""}
    watcher = values["eventWatcher"]
    assert watcher["enabled"] is True and watcher["replicas"] == 1
    assert {"image", "resources", "config"} <= set(watcher)
    assert {"namespaces", "eventTypes", "reasonFilters", "minSeverity"} <= set(watcher["config"])
    assert values["rbac"]["create"] is True
    assert values["serviceAccount"]["create"] is True
    assert values["serviceAccount"]["name"] == "aetherius-event-watcher"
    assert values["monitoring"]["serviceMonitor"] == {"enabled": True, "interval": "30s", "labels": {}}


def test_helm_lint_is_clean() -> None:
    report = helm_python.lint(str(CHART), strict=True)
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_cluster_id_is_injected_into_the_configmap() -> None:
    docs = render_chart({"cluster": {"id": "prod-us-west-2"}})
    configmap = of_kind(docs, "ConfigMap")[0]
    assert configmap["data"]["cluster_id"] == "prod-us-west-2"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cluster": {"id": 'x"; rm -rf /'}}, "/cluster/id"),
        ({"cluster": {"id": "Prod_Cluster"}}, "/cluster/id"),
        ({"eventWatcher": {"replicas": 2}}, "/eventWatcher/replicas"),
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
        ({"eventWatcher": {"config": {"minSeverity": "loud"}}}, "minSeverity"),
        ({"replicaCount": 3}, "replicaCount"),
    ],
)
def test_the_values_schema_refuses_bad_values(values: Doc, message: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=message):
        render_chart(values)


def test_the_image_is_one_for_every_role_and_overridable() -> None:
    docs = render_chart({"image": {"repository": "registry.example.com/aetherius", "tag": "1.2.3"}})
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in of_kind(docs, "Deployment")}
    assert images == {"registry.example.com/aetherius:1.2.3"}
    default = render_chart()
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in of_kind(default, "Deployment")}
    assert images == {"aetherius/aetherius:0.1.0"}, "the tag defaults to the chart's appVersion"


def test_another_release_name_prefixes_every_cluster_scoped_name() -> None:
    docs = render_chart(release="diag", namespace="ops")
    names = {d["metadata"]["name"] for d in of_kind(docs, "ClusterRole", "ClusterRoleBinding")}
    assert names == {"diag-aetherius-event-watcher", "diag-aetherius-orchestrator"}
    assert all(d["metadata"].get("namespace") in (None, "ops") for d in docs)
    role = next(d for d in of_kind(docs, "Role"))
    assert role["rules"][0]["resourceNames"] == ["diag-aetherius-config"]
    assert of_kind(docs, "ConfigMap")[0]["metadata"]["name"] == "diag-aetherius-config"


def test_servicemonitor_toggle() -> None:
    assert len(of_kind(render_chart(), "ServiceMonitor")) == 1
    assert (
        of_kind(render_chart({"monitoring": {"serviceMonitor": {"enabled": False}}}), "ServiceMonitor") == []
    )


def test_config_change_rolls_the_pods() -> None:
    def checksum(values: Doc) -> str:
        pod = of_kind(render_chart(values), "Deployment")[0]["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/config"])

    assert checksum({}) != checksum({"cluster": {"id": "other"}})
