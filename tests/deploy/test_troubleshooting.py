"""docs/troubleshooting.md speaks of these manifests: its names exist, its can-i answers are true."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.deploy.rendering import ROOT, Doc, of_kind

DOC = ROOT / "docs" / "troubleshooting.md"
VARIABLES = {
    "$NS": "aetherius-system",
    "$WATCHER": "system:serviceaccount:aetherius-system:aetherius-event-watcher",
    "$ORCH": "system:serviceaccount:aetherius-system:aetherius-orchestrator",
}


def can_i(docs: list[Doc], *, subject: str, verb: str, target: str, namespace: str | None) -> bool:
    """What ``kubectl auth can-i`` answers, from the rendered RBAC (no cluster needed)."""
    resource, _, name = target.partition("/")
    if name == "log":  # a subresource, not a name
        resource, name = target, ""
    plural, _, group = resource.partition(".")
    sa_namespace, sa_name = subject.split(":")[2:4]
    roles = {
        (r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]): r
        for r in of_kind(docs, "ClusterRole", "Role")
    }
    for binding in of_kind(docs, "ClusterRoleBinding", "RoleBinding"):
        if not any(s["name"] == sa_name and s.get("namespace") == sa_namespace for s in binding["subjects"]):
            continue
        scope = binding["metadata"].get("namespace")
        if scope is not None and scope != namespace:
            continue  # a RoleBinding grants only in its namespace (and never with -A)
        ref = binding["roleRef"]
        role = roles[(ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"])]
        for rule in role["rules"]:
            matches = group in rule["apiGroups"] and plural in rule["resources"] and verb in rule["verbs"]
            if matches and ("resourceNames" not in rule or (name and name in rule["resourceNames"])):
                return True
    return False


def _can_i_lines() -> list[tuple[str, str, str, str | None, bool]]:
    found = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"kubectl auth can-i (?!--list)(.*?)\s+#\s*(yes|no)\b", line)
        if not match:
            continue
        words = shlex.split(match.group(1))
        words = [VARIABLES.get(w, w) for w in words]
        subject = next(w.split("=", 1)[1] for w in words if w.startswith("--as="))
        subject = VARIABLES.get(subject, subject)
        namespace: str | None = "default"
        if "-A" in words:
            namespace = None
        elif "-n" in words:
            namespace = VARIABLES.get(words[words.index("-n") + 1], words[words.index("-n") + 1])
        found.append((subject, words[0], words[1], namespace, match.group(2) == "yes"))
    return found


def test_the_guide_has_the_can_i_checks() -> None:
    lines = _can_i_lines()
    assert len(lines) >= 10
    text = DOC.read_text(encoding="utf-8")
    assert (
        "kubectl auth can-i list pods --as=system:serviceaccount:aetherius-system:aetherius-event-watcher"
        in text
    )


@pytest.mark.parametrize(("subject", "verb", "target", "namespace", "expected"), _can_i_lines())
def test_each_can_i_answer_in_the_guide_is_true(
    kustomized: list[Doc], subject: str, verb: str, target: str, namespace: str | None, expected: bool
) -> None:
    assert can_i(kustomized, subject=subject, verb=verb, target=target, namespace=namespace) is expected


def test_every_object_the_guide_names_exists(kustomized: list[Doc]) -> None:
    text = DOC.read_text(encoding="utf-8")
    shipped = {d["metadata"]["name"] for d in kustomized} | {"aetherius-secrets"}
    named = set(re.findall(r"\b(?:deployment/|sa |configmap )(aetherius-[a-z-]+)", text))
    named |= set(re.findall(r"serviceaccount:aetherius-system:(aetherius-[a-z-]+)", text))
    assert named, "the guide names no object"
    assert named <= shipped, named - shipped
