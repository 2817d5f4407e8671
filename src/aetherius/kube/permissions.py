"""What the credentials could change: Aetherius only reads, so write rules are worth a warning.

A kubeconfig on a laptop usually belongs to a person who may change the cluster. Aetherius
never writes (``KubeClient`` refuses it), but credentials that *could* write are worth knowing
about before they are left in a long-running process: a read-only ServiceAccount or user is the
safer thing to hand it. The check asks the API server a ``SelfSubjectRulesReview`` per namespace
(the same question ``kubectl auth can-i --list -n NS`` asks) and reports the write verbs found.

The review is namespace-scoped (its rules include the cluster-wide ones that apply there), so a
few namespaces that matter are asked: ``default`` and ``kube-system``. Rules are what the
authorizer could enumerate; a webhook authorizer may answer ``incomplete``, which is said too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aetherius.kube.client import KubeClient

CHECKED_NAMESPACES = ("default", "kube-system")
# Verbs that change the cluster or widen someone's rights; "*" is every verb.
WRITE_VERBS = frozenset(
    {"*", "create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}
)


@dataclass(frozen=True)
class WriteAccess:
    """The write verbs and the resources they apply to in one namespace."""

    namespace: str
    verbs: tuple[str, ...]
    resources: tuple[str, ...]
    incomplete: bool = False

    def describe(self) -> str:
        shown = list(self.resources[:6]) + (["…"] if len(self.resources) > 6 else [])
        return f"{', '.join(self.verbs)} on {', '.join(shown)} in {self.namespace}"


# Questions every user may ask about themselves ("create" them is how they are asked): not writes.
SELF_QUESTIONS = frozenset(
    {
        "selfsubjectaccessreviews.authorization.k8s.io",
        "selfsubjectrulesreviews.authorization.k8s.io",
        "selfsubjectreviews.authentication.k8s.io",
    }
)


def _resources(rule: dict[str, Any]) -> Iterable[str]:
    groups = [str(g) for g in rule.get("apiGroups") or [""]]
    for resource in rule.get("resources") or []:
        for group in groups:
            if resource == "*" and group == "*":
                yield "*"
            else:
                yield f"{resource}.{group}" if group else str(resource)


def write_rules(review: dict[str, Any], *, namespace: str) -> WriteAccess | None:
    """The write access a ``SelfSubjectRulesReview`` answer grants, or None when it grants none."""
    status = review.get("status") or {}
    verbs: set[str] = set()
    resources: set[str] = set()
    for rule in status.get("resourceRules") or []:
        if not isinstance(rule, dict):
            continue
        writes = {str(v).lower() for v in rule.get("verbs") or []} & WRITE_VERBS
        changed = set(_resources(rule)) - SELF_QUESTIONS
        if writes and changed:
            verbs |= writes
            resources |= changed
    if not verbs:
        return None
    return WriteAccess(
        namespace=namespace,
        verbs=tuple(sorted(verbs, key=lambda v: (v != "*", v))),
        resources=tuple(sorted(resources, key=lambda r: (r != "*", r))),
        incomplete=bool(status.get("incomplete")),
    )


async def write_access(
    client: KubeClient, *, namespaces: Sequence[str] = CHECKED_NAMESPACES
) -> list[WriteAccess]:
    """The write access of ``client``'s credentials in each of ``namespaces`` that has some.

    Raises ``KubeApiError``/``KubeConnectionError`` as the client does: the caller decides
    whether a check that could not be made is worth more than a debug line.
    """
    found: list[WriteAccess] = []
    for namespace in namespaces:
        access = write_rules(await client.review_own_rules(namespace), namespace=namespace)
        if access is not None:
            found.append(access)
    return found
