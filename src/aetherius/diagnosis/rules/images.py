"""Image pull errors → root cause: the tag/repository does not exist, the registry refuses, or
the registry cannot be reached. Kubelet puts the runtime's words in the ``Failed`` event and the
``ErrImagePull`` message; ``Back-off pulling image`` alone says nothing."""

from __future__ import annotations

import re

__all__ = ["classify_pull"]

_AUTH = re.compile(
    r"401 Unauthorized|403 Forbidden|unauthorized|authentication required|no basic auth credentials|"
    r"denied: requested access|pull access denied|failed to authorize|may require 'docker login'",
    re.I,
)
_NOT_FOUND = re.compile(
    r"code = NotFound|: not found|manifest unknown|manifest for \S+ not found|not found: manifest|"
    r"repository \S+ not found|name unknown|does not exist",
    re.I,
)
_UNREACHABLE = re.compile(
    r"no such host|i/o timeout|connection refused|dial tcp|TLS handshake timeout|no route to host|"
    r"context deadline exceeded|server misbehaving",
    re.I,
)


def classify_pull(message: str) -> str:
    if _NOT_FOUND.search(message) and not re.search(r"pull access denied|401|403", message, re.I):
        return "ImageNotFound"
    if _AUTH.search(message):
        return "RegistryAuthFailure"
    if _UNREACHABLE.search(message):
        return "DependencyUnavailable"
    return "Unknown"
