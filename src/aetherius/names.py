"""Kubernetes' own rules for object names, so no outside text can steer which URL is read.

Names reach Aetherius from places anyone may write: an Event's ``involvedObject.name`` is free
text for every tenant allowed to create Events, an Alertmanager label is whatever the rule says,
a webhook body is the sender's. Pasted into an API path, ``../secrets/db`` read a Secret and
``x?watch=true`` added query parameters. Every name is held to the rule the API server applies
when the object is created (apimachinery's validation: DNS-1123 subdomain for most kinds, DNS-1123
label for namespaces and containers, DNS-1035 label for Services): a real object always passes,
and nothing that passes can leave its path segment.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from prometheus_client import Counter

__all__ = [
    "REJECTED_NAMES",
    "InvalidName",
    "check_object",
    "name_problem",
    "namespace_problem",
]

REJECTED_NAMES = Counter(
    "aetherius_invalid_names_total",
    "Object names and namespaces refused because the API server could never have created them",
    ["entry"],  # watcher | webhook | api | gateway | bus
)

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class InvalidName(ValueError):
    """A name or namespace no Kubernetes object can have; nothing is read for it."""


def _dns1123_label(value: str) -> str | None:
    if len(value) > 63:
        return "must be at most 63 characters (a DNS-1123 label)"
    if not _LABEL.fullmatch(value):
        return (
            "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending alphanumeric"
        )
    return None


def _dns1035_label(value: str) -> str | None:
    if len(value) > 63:
        return "must be at most 63 characters (a DNS-1035 label)"
    if not _LABEL_1035.fullmatch(value):
        return "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter"
    return None


def _dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253:
        return "must be at most 253 characters (a DNS-1123 subdomain)"
    if not _SUBDOMAIN.fullmatch(value):
        return "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.'"
    return None


# The kinds whose names follow another rule than the DNS-1123 subdomain most kinds use.
_RULES: dict[str, Callable[[str], str | None]] = {
    "Namespace": _dns1123_label,
    "Service": _dns1035_label,
    "Container": _dns1123_label,
}


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` cannot name an object of ``kind`` (None: it can)."""
    if not name:
        return "is empty"
    return _RULES.get(kind, _dns1123_subdomain)(name)


def namespace_problem(namespace: str) -> str | None:
    """Why ``namespace`` cannot be a namespace ("" is no namespace, which is allowed)."""
    return _dns1123_label(namespace) if namespace else None


def check_object(kind: str, *, namespace: str | None, name: str, entry: str) -> None:
    """Raise ``InvalidName`` (counted under ``entry``) unless both could belong to a real object."""
    for what, problem in (
        (f"namespace {namespace!r}", namespace_problem(namespace or "")),
        (f"{kind} name {name!r}", name_problem(kind, name)),
    ):
        if problem:
            REJECTED_NAMES.labels(entry=entry).inc()
            raise InvalidName(f"{what[:300]} {problem}")
