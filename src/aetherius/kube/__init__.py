"""Kubernetes access: the only code that talks HTTP to an API server.

Everything above this layer (watch, gateway, diagnosis) asks ``KubeClient`` for raw JSON and
decodes it with orjson; the generated models of the official client are never built on a hot
path. The official ``kubernetes`` package is used only to load kubeconfig/in-cluster credentials,
and is imported nowhere else.
"""

from aetherius.kube.client import KubeApiError, KubeClient, KubeConnectionError, ReadOnlyViolation
from aetherius.kube.ratelimit import TokenBucket

__all__ = ["KubeApiError", "KubeClient", "KubeConnectionError", "ReadOnlyViolation", "TokenBucket"]
