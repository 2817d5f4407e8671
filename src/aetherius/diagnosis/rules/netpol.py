"""NetworkPolicy semantics, as the API server documents them, for one question: does any policy
that selects a pod admit traffic from a given client pod?

A pod selected by at least one policy with ``Ingress`` in its ``policyTypes`` (or, without
``policyTypes``, any policy: Ingress is implied) is isolated for ingress; it then accepts only
what some rule of those policies allows. A rule with no ``from`` allows every source; a peer's
``podSelector`` alone means pods of the policy's namespace; with ``namespaceSelector``, pods of
the namespaces it selects; ``ipBlock`` peers are not evaluated (pod addresses are not at hand),
so a policy with one is never called blocking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["admits", "isolates", "selector_matches"]

Obj = dict[str, Any]


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels; ``{}`` selects all."""
    if not isinstance(selector, dict):
        return False
    wanted = selector.get("matchLabels") or {}
    if not isinstance(wanted, dict) or any(labels.get(k) != v for k, v in wanted.items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        if not isinstance(expression, dict):
            return False
        key, operator = str(expression.get("key")), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def isolates(policy: Obj, pod_labels: Mapping[str, Any]) -> bool:
    """Whether ``policy`` (of the pod's namespace) isolates the pod for ingress."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or ["Ingress"]
    return "Ingress" in types and selector_matches(spec.get("podSelector") or {}, pod_labels)


def admits(
    policy: Obj,
    *,
    client_namespace: str,
    client_labels: Mapping[str, Any],
    namespace_labels: Mapping[str, Any],
) -> bool | None:
    """Whether a rule of ``policy`` lets the client in (None: an ipBlock peer, not evaluated)."""
    policy_namespace = str((policy.get("metadata") or {}).get("namespace") or "")
    unknown = False
    for rule in (policy.get("spec") or {}).get("ingress") or ():
        if not isinstance(rule, dict):
            continue
        peers = rule.get("from")
        if not peers:
            return True
        for peer in peers:
            if not isinstance(peer, dict):
                continue
            if "ipBlock" in peer:
                unknown = True
                continue
            pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
            if namespaces is None:
                in_namespace = client_namespace == policy_namespace
            else:
                in_namespace = selector_matches(namespaces, namespace_labels)
            if in_namespace and (pods is None or selector_matches(pods, client_labels)):
                return True
    return None if unknown else False
