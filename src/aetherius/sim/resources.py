"""The resource types the simulated API server serves, as the real discovery documents name them.

One table drives discovery, routing, list kinds and field-selector validation, so a kind is
added in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# Field selectors every resource accepts (the generic storage's defaults).
_GENERIC_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True, kw_only=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    fields: tuple[str, ...] = field(default=())
    # The storage this resource is a view of (events.k8s.io/v1 events are core/v1 events).
    storage: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """The storage key: ``plural.group`` like the real server's resource names (``pods``)."""
        return self.storage or self.qualified

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def field_selectors(self) -> tuple[str, ...]:
        return _GENERIC_FIELDS + self.fields


def _r(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    fields: tuple[str, ...] = (),
    storage: str = "",
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        fields=fields,
        storage=storage,
    )


_POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
)
_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
_EVENTS_V1_FIELDS = (
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "deprecatedSource",
    "type",
)

RESOURCES: tuple[ResourceType, ...] = (
    _r("", "v1", "pods", "Pod", short=("po",), categories=("all",), fields=_POD_FIELDS),
    _r("", "v1", "events", "Event", short=("ev",), fields=_EVENT_FIELDS),
    _r("", "v1", "nodes", "Node", namespaced=False, short=("no",), fields=("spec.unschedulable",)),
    _r("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",), fields=("status.phase",)),
    _r("", "v1", "services", "Service", short=("svc",), categories=("all",)),
    _r("", "v1", "endpoints", "Endpoints", short=("ep",)),
    _r("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _r("", "v1", "secrets", "Secret", fields=("type",)),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",)),
    _r("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False, short=("pv",)),
    _r("", "v1", "resourcequotas", "ResourceQuota", short=("quota",)),
    _r("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _r("", "v1", "limitranges", "LimitRange", short=("limits",)),
    _r("apps", "v1", "deployments", "Deployment", short=("deploy",), categories=("all",)),
    _r("apps", "v1", "replicasets", "ReplicaSet", short=("rs",), categories=("all",)),
    _r("apps", "v1", "statefulsets", "StatefulSet", short=("sts",), categories=("all",)),
    _r("apps", "v1", "daemonsets", "DaemonSet", short=("ds",), categories=("all",)),
    _r("batch", "v1", "jobs", "Job", categories=("all",), fields=("status.successful",)),
    _r("batch", "v1", "cronjobs", "CronJob", short=("cj",), categories=("all",)),
    _r("networking.k8s.io", "v1", "ingresses", "Ingress", short=("ing",)),
    _r("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
    _r("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False, short=("sc",)),
    _r("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short=("hpa",)),
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",)),
    _r("events.k8s.io", "v1", "events", "Event", fields=_EVENTS_V1_FIELDS, storage="events"),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
    ),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
    ),
    _r("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
)

# (group, version, plural) -> type, for routing.
BY_PATH: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
# (apiVersion, kind) -> type, for objects handed to the Python API or loaded from scenarios.
BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}
# kind -> the preferred type (core events win over events.k8s.io for the bare name "Event").
BY_BARE_KIND: dict[str, ResourceType] = {}
for _rt in reversed(RESOURCES):
    BY_BARE_KIND[_rt.kind] = _rt

GROUP_VERSIONS: dict[str, list[str]] = {}
for _rt in RESOURCES:
    if _rt.group and _rt.version not in GROUP_VERSIONS.setdefault(_rt.group, []):
        GROUP_VERSIONS[_rt.group].append(_rt.version)


class UnknownKind(LookupError):
    """An object whose apiVersion/kind the simulated cluster does not serve."""


def resource_for(kind: str, api_version: str | None = None) -> ResourceType:
    """The type for a kind (``"Pod"``, ``"Deployment"``), optionally pinned to an apiVersion."""
    found = BY_KIND.get((api_version, kind)) if api_version else BY_BARE_KIND.get(kind)
    if found is None:
        raise UnknownKind(f"the simulated cluster does not serve {api_version or '*'} {kind}")
    return found
