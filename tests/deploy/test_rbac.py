"""RBAC is read-only and least-privilege in every rendered variant."""

from __future__ import annotations

import copy

import pytest

from tests.deploy.rendering import Doc, of_kind

READ_VERBS = {"get", "list", "watch"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "impersonate", "bind", "escalate"}
# The exact names each role reads by name; anything else in resourceNames is a mistake.
EXPECTED_CONFIGMAP_NAMES = {"aetherius-config"}


def rbac_problems(docs: list[Doc]) -> list[str]:
    """Every write verb, wildcard, Secret access or name-unlimited ConfigMap list, one line each."""
    problems: list[str] = []
    for role in of_kind(docs, "ClusterRole", "Role"):
        where = f"{role['kind']}/{role['metadata']['name']}"
        if role.get("aggregationRule"):
            problems.append(f"{where}: aggregationRule pulls in rules we do not control")
        for rule in role.get("rules") or []:
            verbs = set(rule.get("verbs", []))
            resources = set(rule.get("resources", []))
            groups = set(rule.get("apiGroups", []))
            names = set(rule.get("resourceNames", []))
            if verbs - READ_VERBS:
                problems.append(f"{where}: non-read verbs {sorted(verbs - READ_VERBS)}")
            for field in (verbs, resources, groups, names, set(rule.get("nonResourceURLs", []))):
                if any("*" in item for item in field):
                    problems.append(f"{where}: wildcard in {sorted(field)}")
            if rule.get("nonResourceURLs"):
                problems.append(f"{where}: nonResourceURLs {rule['nonResourceURLs']}")
            if any(r.split("/")[0] == "secrets" for r in resources) and "" in groups | {"*"}:
                problems.append(f"{where}: grants access to Secrets")
            if "configmaps" in resources and names - EXPECTED_CONFIGMAP_NAMES:
                problems.append(f"{where}: ConfigMap names {sorted(names)}")
    for binding in of_kind(docs, "ClusterRoleBinding", "RoleBinding"):
        ref = binding["roleRef"]
        if ref["kind"] == "ClusterRole" and ref["name"] in {"cluster-admin", "admin", "edit", "view"}:
            problems.append(f"{binding['metadata']['name']}: binds the built-in {ref['name']} role")
    return problems


def rules_of(docs: list[Doc], subject: str) -> list[Doc]:
    """All rules granted to the ServiceAccount ``subject`` through any binding in ``docs``."""
    roles = {(r["kind"], r["metadata"]["name"]): r for r in of_kind(docs, "ClusterRole", "Role")}
    rules: list[Doc] = []
    for binding in of_kind(docs, "ClusterRoleBinding", "RoleBinding"):
        if any(s["kind"] == "ServiceAccount" and s["name"] == subject for s in binding["subjects"]):
            role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
            rules.extend(role["rules"])
    return rules


def allows(rules: list[Doc], *, verb: str, resource: str, group: str = "", name: str | None = None) -> bool:
    for rule in rules:
        if group not in rule["apiGroups"] or resource not in rule["resources"] or verb not in rule["verbs"]:
            continue
        if "resourceNames" in rule and name not in rule["resourceNames"]:
            continue
        return True
    return False


def test_no_write_verb_wildcard_or_secret_anywhere(sources: dict[str, list[Doc]]) -> None:
    for source, docs in sources.items():
        assert not rbac_problems(docs), (source, rbac_problems(docs))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}, "non-read verbs"),
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}, "wildcard"),
        ({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}, "wildcard"),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}, "Secrets"),
        (
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["aetherius-*"],
                "verbs": ["get"],
            },
            "wildcard",
        ),
        (
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app-db"], "verbs": ["get"]},
            "ConfigMap names",
        ),
    ],
)
def test_the_rbac_check_catches_a_bad_rule(kustomized: list[Doc], rule: Doc, expected: str) -> None:
    docs = copy.deepcopy(kustomized)
    of_kind(docs, "ClusterRole")[0]["rules"].append(rule)
    assert any(expected in problem for problem in rbac_problems(docs))


def test_the_event_watcher_can_read_what_it_watches(sources: dict[str, list[Doc]]) -> None:
    for source in ("kustomize", "chart-defaults", "chart-custom"):
        rules = rules_of(sources[source], "aetherius-event-watcher")
        for resource in ("events", "pods"):
            for verb in ("list", "watch"):
                assert allows(rules, verb=verb, resource=resource), (source, verb, resource)
        assert allows(rules, verb="get", resource="namespaces", name="kube-system"), source
        assert not allows(rules, verb="get", resource="namespaces", name="default"), source
        assert allows(rules, verb="list", resource="nodes"), source
        assert allows(rules, verb="get", resource="configmaps", name="aetherius-config"), source
        assert not allows(rules, verb="get", resource="configmaps", name="other"), source
        assert not allows(rules, verb="get", resource="pods/log"), "the watcher reads no logs"


def test_the_orchestrator_can_read_its_evidence_but_not_enumerate_configmaps(
    sources: dict[str, list[Doc]],
) -> None:
    for source in ("kustomize", "chart-defaults"):
        rules = rules_of(sources[source], "aetherius-orchestrator")
        assert allows(rules, verb="get", resource="pods/log")
        for group, resource in [
            ("", "pods"), ("", "events"), ("", "nodes"), ("", "persistentvolumeclaims"),
            ("apps", "deployments"), ("apps", "replicasets"), ("batch", "jobs"),
            ("discovery.k8s.io", "endpointslices"), ("networking.k8s.io", "ingresses"),
            ("autoscaling", "horizontalpodautoscalers"), ("policy", "poddisruptionbudgets"),
            ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
        ]:  # fmt: skip
            assert allows(rules, verb="list", resource=resource, group=group), (source, resource)
        assert allows(rules, verb="get", resource="configmaps", name="any-app-config")
        assert not allows(rules, verb="list", resource="configmaps")
        assert not allows(rules, verb="watch", resource="pods")


def test_the_api_has_no_kubernetes_access(sources: dict[str, list[Doc]]) -> None:
    for source in ("kustomize", "chart-defaults"):
        docs = sources[source]
        assert rules_of(docs, "aetherius-api") == []
        account = next(d for d in of_kind(docs, "ServiceAccount") if d["metadata"]["name"] == "aetherius-api")
        assert account["automountServiceAccountToken"] is False
        api = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "aetherius-api")
        assert api["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_embedded_mode_binds_one_account_with_both_sets(sources: dict[str, list[Doc]]) -> None:
    docs = sources["chart-embedded"]
    assert [d["metadata"]["name"] for d in of_kind(docs, "ServiceAccount")] == ["aetherius"]
    rules = rules_of(docs, "aetherius")
    assert allows(rules, verb="watch", resource="events")
    assert allows(rules, verb="get", resource="pods/log")


def test_rbac_create_false_renders_no_rbac(sources: dict[str, list[Doc]]) -> None:
    docs = sources["chart-no-rbac"]
    assert not of_kind(docs, "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", "ServiceAccount")
    assert of_kind(docs, "Deployment"), "the workloads still render"


def test_list_configmaps_is_an_explicit_opt_in() -> None:
    from tests.deploy.rendering import render_chart

    docs = render_chart({"rbac": {"orchestrator": {"listConfigMaps": True}}})
    assert allows(rules_of(docs, "aetherius-orchestrator"), verb="list", resource="configmaps")
    assert not rbac_problems(docs)
