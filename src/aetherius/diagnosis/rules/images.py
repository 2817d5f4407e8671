"""Image pull errors → root cause: the tag/repository does not exist, the registry refuses, or
the registry cannot be reached. Kubelet puts the runtime's words in the ``Failed`` event and the
``ErrImagePull`` message; ``Back-off pulling image`` alone says nothing."""

from __future__ import annotations

from aetherius.diagnosis.rules._caseless import Caseless

__all__ = ["classify_pull"]

# NB: every pull error names its image (a tag per pod in a rollout), so these run once per pod.
_AUTH = Caseless(
    r"401 unauthorized|403 forbidden|unauthorized|authentication required|no basic auth credentials|"
    r"denied: requested access|pull access denied|failed to authorize|may require 'docker login'"
)
_NOT_FOUND = Caseless(
    r"code = notfound|: not found|manifest unknown|manifest for \S+ not found|not found: manifest|"
    r"repository \S+ not found|name unknown|does not exist"
)
_REFUSED = Caseless(r"pull access denied|401|403")
_UNREACHABLE = Caseless(
    r"no such host|i/o timeout|connection refused|dial tcp|tls handshake timeout|no route to host|"
    r"context deadline exceeded|server misbehaving"
)


def classify_pull(message: str) -> str:
    if _NOT_FOUND.found(message) and not _REFUSED.found(message):
        return "ImageNotFound"
    if _AUTH.found(message):
        return "RegistryAuthFailure"
    if _UNREACHABLE.found(message):
        return "DependencyUnavailable"
    return "Unknown"
