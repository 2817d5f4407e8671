"""Why the API server refused to create a pod (``FailedCreate`` on a ReplicaSet/Job/StatefulSet)."""

from __future__ import annotations

import re

__all__ = ["classify_admission"]

_RULES = [
    (
        "QuotaExceeded",
        re.compile(
            r"exceeded quota|maximum \w+ usage per|must specify limits|must specify requests|LimitRange", re.I
        ),
    ),
    (
        "DependencyUnavailable",
        re.compile(r"failed calling webhook|failed to call webhook|no endpoints available for service", re.I),
    ),
    ("MissingReference", re.compile(r'serviceaccount "[^"]+" not found|not found', re.I)),
    ("PermissionDenied", re.compile(r"denied the request|violates PodSecurity|forbidden", re.I)),
]


def classify_admission(message: str) -> str:
    for root, pattern in _RULES:
        if pattern.search(message):
            return root
    return "Unknown"
