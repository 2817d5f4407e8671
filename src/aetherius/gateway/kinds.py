"""The kinds the gateway may read, and where each lives in the API.

A closed table on purpose: the gateway answers for these kinds only, so what Aetherius can read
is visible in one place and reviewed like code.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from aetherius.names import InvalidName, name_problem, namespace_problem

__all__ = ["KINDS", "KindInfo", "UnknownKind", "kind_info"]


class UnknownKind(ValueError):
    """A kind the gateway does not read."""


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: str
    api_version: str  # "v1" or "group/version"
    plural: str
    namespaced: bool

    def list_path(self, namespace: str | None) -> str:
        """The one place a read's path is built: from the table, and checked, encoded names.

        NB: a name is a single path segment or nothing: it is held to Kubernetes' rules and
        percent-encoded, so no text can add a segment, climb out (``..``) or add a query.
        """
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            problem = namespace_problem(namespace)
            if problem:
                raise InvalidName(f"namespace {namespace[:300]!r} {problem}")
            return f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, namespace: str | None, name: str, *, subresource: str = "") -> str:
        problem = name_problem(self.kind, name)
        if problem:
            raise InvalidName(f"{self.kind} name {name[:300]!r} {problem}")
        path = f"{self.list_path(namespace if self.namespaced else None)}/{quote(name, safe='')}"
        return f"{path}/{subresource}" if subresource else path


_TABLE = [
    KindInfo("Pod", "v1", "pods", True),
    KindInfo("Event", "v1", "events", True),
    KindInfo("Node", "v1", "nodes", False),
    KindInfo("Namespace", "v1", "namespaces", False),
    KindInfo("Service", "v1", "services", True),
    KindInfo("Endpoints", "v1", "endpoints", True),
    KindInfo("PersistentVolumeClaim", "v1", "persistentvolumeclaims", True),
    KindInfo("PersistentVolume", "v1", "persistentvolumes", False),
    KindInfo("ConfigMap", "v1", "configmaps", True),
    KindInfo("Secret", "v1", "secrets", True),
    KindInfo("ResourceQuota", "v1", "resourcequotas", True),
    KindInfo("Deployment", "apps/v1", "deployments", True),
    KindInfo("ReplicaSet", "apps/v1", "replicasets", True),
    KindInfo("StatefulSet", "apps/v1", "statefulsets", True),
    KindInfo("DaemonSet", "apps/v1", "daemonsets", True),
    KindInfo("Job", "batch/v1", "jobs", True),
    KindInfo("CronJob", "batch/v1", "cronjobs", True),
    KindInfo("Ingress", "networking.k8s.io/v1", "ingresses", True),
    KindInfo("IngressClass", "networking.k8s.io/v1", "ingressclasses", False),
    KindInfo("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", True),
    KindInfo("StorageClass", "storage.k8s.io/v1", "storageclasses", False),
    KindInfo("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers", True),
    KindInfo("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", True),
    KindInfo("EndpointSlice", "discovery.k8s.io/v1", "endpointslices", True),
    KindInfo(
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        False,
    ),
    KindInfo(
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        False,
    ),
]

KINDS: dict[str, KindInfo] = {info.kind: info for info in _TABLE}


def kind_info(kind: str) -> KindInfo:
    try:
        return KINDS[kind]
    except KeyError:
        raise UnknownKind(f"the gateway does not read {kind!r}") from None
