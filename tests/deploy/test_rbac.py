"""RBAC is read-only and least-privilege in every rendered variant."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.deploy.rendering import Doc, of_kind, render_chart
from tests.deploy.test_manifests import load_configmap

READ_VERBS = {"get", "list", "watch"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "impersonate", "bind", "escalate"}
# The exact names each role reads by name; anything else in resourceNames is a mistake.
EXPECTED_CONFIGMAP_NAMES = {"aetherius-config"}


# The one rule ``rbac.orchestrator.secretMetadata`` adds, to the orchestrator's ClusterRole only.
SECRET_OPT_IN_RULE = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}
SECRET_OPT_IN_SOURCES = {"chart-secret-metadata"}


def rbac_problems(docs: list[Doc], *, secret_opt_in: str | None = None) -> list[str]:
    """Every write verb, wildcard, Secret access or name-unlimited ConfigMap list, one line each.

    ``secret_opt_in`` names the one ClusterRole allowed ``SECRET_OPT_IN_RULE`` (exactly that rule);
    any other Secret rule, anywhere, is still a problem.
    """
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
            opted_in = secret_opt_in == where and rule == SECRET_OPT_IN_RULE
            if any(r.split("/")[0] == "secrets" for r in resources) and "" in groups | {"*"} and not opted_in:
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
    assert set(sources) >= SECRET_OPT_IN_SOURCES
    for source, docs in sources.items():
        if source in SECRET_OPT_IN_SOURCES:
            continue
        assert not rbac_problems(docs), (source, rbac_problems(docs))
        for rule in (r for role in of_kind(docs, "ClusterRole", "Role") for r in role["rules"]):
            assert not any(res.startswith("secrets") for res in rule["resources"]), (source, rule)


def test_secret_metadata_opt_in_grants_list_and_get_on_secrets_to_the_orchestrator_only(
    sources: dict[str, list[Doc]],
) -> None:
    docs = sources["chart-secret-metadata"]
    assert rbac_problems(docs, secret_opt_in="ClusterRole/aetherius-orchestrator") == []
    assert rbac_problems(docs), "without naming the opt-in, its Secret rule is a problem"
    secret_rules = [
        (role["metadata"]["name"], rule)
        for role in of_kind(docs, "ClusterRole", "Role")
        for rule in role["rules"]
        if any(res.split("/")[0] == "secrets" for res in rule["resources"])
    ]
    assert secret_rules == [("aetherius-orchestrator", SECRET_OPT_IN_RULE)]
    orchestrator = rules_of(docs, "aetherius-orchestrator")
    assert allows(orchestrator, verb="list", resource="secrets")
    assert allows(orchestrator, verb="get", resource="secrets")
    assert not allows(orchestrator, verb="watch", resource="secrets")
    for account in ("aetherius-event-watcher", "aetherius-api"):
        assert not allows(rules_of(docs, account), verb="list", resource="secrets"), account
    # Everything else is the default render's, rule for rule.
    default = rules_of(sources["chart-defaults"], "aetherius-orchestrator")
    assert [r for r in orchestrator if r != SECRET_OPT_IN_RULE] == default


def test_the_opt_in_rule_is_checked_exactly(kustomized: list[Doc]) -> None:
    docs = copy.deepcopy(kustomized)
    role = next(r for r in of_kind(docs, "ClusterRole") if r["metadata"]["name"] == "aetherius-orchestrator")
    role["rules"].append({**SECRET_OPT_IN_RULE, "verbs": ["get", "list", "watch"]})
    assert any(
        "Secrets" in p for p in rbac_problems(docs, secret_opt_in="ClusterRole/aetherius-orchestrator")
    )
    role["rules"][-1] = dict(SECRET_OPT_IN_RULE)
    assert not rbac_problems(docs, secret_opt_in="ClusterRole/aetherius-orchestrator")
    assert any(
        "Secrets" in p for p in rbac_problems(docs, secret_opt_in="ClusterRole/aetherius-event-watcher")
    )


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
    docs = render_chart({"rbac": {"orchestrator": {"listConfigMaps": True}}})
    assert allows(rules_of(docs, "aetherius-orchestrator"), verb="list", resource="configmaps")
    assert not rbac_problems(docs)


def test_secret_metadata_reads_are_configured_only_with_the_opt_in(
    sources: dict[str, list[Doc]], tmp_path: Path
) -> None:
    for source, expected in (
        ("chart-defaults", False),
        ("chart-embedded", False),
        ("chart-secret-metadata", True),
    ):
        configmap = next(d for d in of_kind(sources[source], "ConfigMap") if "app.yaml" in d.get("data", {}))
        settings = load_configmap([configmap], tmp_path / source)
        assert settings.kube.secret_metadata is expected, source
    embedded = render_chart(
        {"embedded": {"enabled": True}, "rbac": {"orchestrator": {"secretMetadata": True}}}
    )
    assert allows(rules_of(embedded, "aetherius"), verb="list", resource="secrets")
    assert rbac_problems(embedded, secret_opt_in="ClusterRole/aetherius") == []
