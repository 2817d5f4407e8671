"""Decoding objects into the analysis view: only the fields analyzers read, secrets never decoded.

Diagnosis reads every object of a cluster but looks at a small part of each: a Pod's env, volume
mounts, image and container ids are never consulted. Decoding with msgspec into ``TypedDict``
schemas that name only the fields analyzers use skips the rest inside the decoder (no Python
object is ever built for it), which makes reading a snapshot cheaper than a plain ``orjson.loads``.
It also makes privacy structural: env values, Secret ``data``/``stringData`` and managed fields
are not dropped after the fact, they are never materialised. Values stay plain ``dict``/``list``
so analyzers keep reading them with ``.get``. A pod whose status is plainly running
(``plainly_running``) is decoded slimmer still, into a ``PlainPod`` Struct: what other kinds'
analyzers read of it; most pods of a cluster are such pods, and building fewer objects is most of
a scan's cost.

A document that does not fit the schemas (a wrong type where a mapping is expected) raises
``msgspec.ValidationError``; callers then fall back to the tolerant, fully redacted path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, TypedDict

import msgspec

__all__ = [
    "ANALYSIS_ONLY",
    "AnalysisItem",
    "DecodeError",
    "PlainPod",
    "decode_items",
    "decode_list_page",
    "decode_whole_pod",
    "plainly_running",
    "split_document",
    "strip",
]

DecodeError = (msgspec.ValidationError, msgspec.DecodeError)
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class _OwnerRef(TypedDict, total=False):
    kind: Any
    name: Any
    uid: Any
    controller: Any


class _Volume(TypedDict, total=False):
    # NB: only the references analyzers follow; projected token sources etc. are skipped.
    name: Any
    persistentVolumeClaim: Any
    configMap: Any
    secret: Any


class _Meta(TypedDict, total=False):
    # NB: only what analyzers read; managedFields in particular is never decoded.
    name: Any
    namespace: Any
    uid: Any
    labels: Any
    annotations: Any
    ownerReferences: list[_OwnerRef]
    creationTimestamp: Any


class _Container(TypedDict, total=False):
    # NB: env/envFrom/args are absent on purpose: literal values are never decoded. Adding a
    # field an analyzer starts to read is part of that analyzer's change (tests/scenarios catch it).
    name: Any
    image: Any
    command: Any
    resources: Any
    ports: Any
    livenessProbe: Any
    readinessProbe: Any
    startupProbe: Any


class _PodSpec(TypedDict, total=False):
    containers: list[_Container]
    initContainers: list[_Container]
    volumes: list[_Volume]
    nodeName: Any
    serviceAccountName: Any
    affinity: Any
    topologySpreadConstraints: Any
    nodeSelector: Any
    schedulingGates: Any
    restartPolicy: Any
    imagePullSecrets: Any


class _ContainerStatus(TypedDict, total=False):
    name: Any
    ready: Any
    restartCount: Any
    image: Any
    state: Any
    lastState: Any


class _PodStatus(TypedDict, total=False):
    phase: Any
    reason: Any
    message: Any
    conditions: Any
    containerStatuses: list[_ContainerStatus]
    initContainerStatuses: list[_ContainerStatus]


class _Pod(TypedDict, total=False):
    apiVersion: Any
    kind: Any
    metadata: _Meta
    spec: _PodSpec
    status: _PodStatus


class PlainMeta(msgspec.Struct, gc=False):
    # NB: no uid or owner: nothing reads them of a pod no event is about (no finding names it).
    name: str
    namespace: str = ""
    labels: dict[str, str] = {}
    creationTimestamp: str | None = None


class PlainClaim(msgspec.Struct, gc=False):
    claimName: str | None = None


class PlainVolume(msgspec.Struct, gc=False):
    persistentVolumeClaim: PlainClaim | None = None


class PlainSpec(msgspec.Struct, gc=False):
    nodeName: str | None = None
    volumes: list[PlainVolume] = []


class PlainStamps(msgspec.Struct, gc=False):
    startedAt: str | None = None
    finishedAt: str | None = None


class PlainState(msgspec.Struct, gc=False):
    running: PlainStamps | None = None
    waiting: PlainStamps | None = None
    terminated: PlainStamps | None = None


class PlainContainerStatus(msgspec.Struct, gc=False):
    name: str = ""
    ready: bool | None = None
    restartCount: int = 0
    state: PlainState | None = None
    lastState: PlainState | None = None


class PlainCondition(msgspec.Struct, gc=False):
    type: str = ""
    status: str = ""
    lastTransitionTime: str | None = None


class PlainStatus(msgspec.Struct, gc=False):
    phase: str | None = None
    conditions: list[PlainCondition] = []
    containerStatuses: list[PlainContainerStatus] = []
    # NB: only its presence counts (a pod with init containers is never plain); never decoded.
    initContainerStatuses: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class PlainPod(msgspec.Struct, gc=False):
    """A plainly running pod (see ``plainly_running``): what other kinds' analyzers read of it.

    Labels (selectors), node, phase and conditions (readiness), claims (storage), and the stamps
    the snapshot's "now" is taken from. Its containers, probes and annotations are only
    read when the pod has events, and then the loader decodes it again in the full view.

    NB: typed msgspec Structs, not dicts: most pods of a cluster are such pods, and a Struct is
    a fraction of a dict's allocation, untracked by the garbage collector, and read without
    type checks (a value of another type fails the decode, and the pod takes the full view).
    """

    metadata: PlainMeta
    spec: PlainSpec
    status: PlainStatus
    kind: str = ""
    apiVersion: str = ""

    def plainly_running(self) -> bool:
        """``plainly_running`` of this view (the same test on the same fields)."""
        status = self.status
        if status.phase != "Running" or status.initContainerStatuses is not msgspec.UNSET:
            return False
        statuses = status.containerStatuses
        if not statuses:
            return False
        # NB: a loop, not all() over a generator: this runs for most pods of a cluster.
        for cs in statuses:  # noqa: SIM110
            if cs.ready is not True or cs.restartCount:
                return False
        return True


# An object as the analysis view holds it: a dict, or a plainly running pod's ``PlainPod``.
AnalysisItem = dict[str, Any] | PlainPod


class _Generic(TypedDict, total=False):
    """Every other kind: whole spec/status (they are few and small), secrets' values never decoded."""

    apiVersion: Any
    kind: Any
    metadata: _Meta
    spec: Any
    status: Any
    # ConfigMap/Secret: only the keys are kept; a Raw value is a slice of the input, never a str.
    data: dict[str, msgspec.Raw]
    binaryData: dict[str, msgspec.Raw]
    stringData: dict[str, msgspec.Raw]
    type: Any
    # Endpoints, EndpointSlice, webhook configurations, StorageClass.
    subsets: Any
    endpoints: Any
    addressType: Any
    ports: Any
    webhooks: Any
    provisioner: Any
    parameters: Any
    volumeBindingMode: Any
    reclaimPolicy: Any
    allowVolumeExpansion: Any
    # Events (core/v1 and events.k8s.io/v1).
    involvedObject: Any
    regarding: Any
    reason: Any
    message: Any
    note: Any
    count: Any
    series: Any
    eventTime: Any
    firstTimestamp: Any
    lastTimestamp: Any
    deprecatedCount: Any
    deprecatedFirstTimestamp: Any
    deprecatedLastTimestamp: Any
    reportingController: Any
    source: Any
    # A nested list: the caller falls back to the tolerant path for it.
    items: Any
    # Aetherius' PodLogs.
    container: Any
    previous: Any
    text: Any


class _Document(TypedDict, total=False):
    kind: Any
    apiVersion: Any
    metadata: Any
    items: list[msgspec.Raw]


class _PodPage(TypedDict, total=False):
    metadata: Any
    items: list[_Pod]


class _GenericPage(TypedDict, total=False):
    metadata: Any
    items: list[_Generic]


# NB: typed as Any: the schemas only prune; what comes out is plain dicts read with .get.
_pod: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_Pod)
_plain_pod = msgspec.json.Decoder(PlainPod)
_generic: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_Generic)
_document = msgspec.json.Decoder(_Document | list[msgspec.Raw])
_pages: dict[bool, msgspec.json.Decoder[Any]] = {
    True: msgspec.json.Decoder(_PodPage),
    False: msgspec.json.Decoder(_GenericPage),
}

_PEEK = 48
# NB: searched in the item's bytes in place (no slice is copied); group 1 is set for a Pod.
_KIND_HEAD = re.compile(rb'"kind":"(Pod")?')

# Fields of the analysis view that are keys only (values dropped at decode time).
ANALYSIS_ONLY = ("data", "binaryData", "stringData")


def strip(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Make a decoded object fit to keep: Secrets reduced to metadata, ConfigMaps to their keys.

    Applied by every loader before an object is retained (the analysis view and the tolerant path
    alike), so a Secret's values never outlive the decoding of the bytes they came in.
    """
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
            annotations.pop(_LAST_APPLIED)
    if kind == "Secret":
        return {key: obj[key] for key in ("apiVersion", "kind", "metadata", "type") if key in obj}
    if kind == "ConfigMap":
        for key in ANALYSIS_ONLY:
            data = obj.get(key)
            if isinstance(data, dict):
                obj[key] = dict.fromkeys(data, "")
    return obj


def split_document(data: bytes) -> tuple[dict[str, Any] | None, list[msgspec.Raw]]:
    """A JSON snapshot's top level (without items) and its items as raw slices of ``data``.

    A single object that is not a list comes back as one raw item.
    """
    doc = _document.decode(data)
    if isinstance(doc, list):
        return None, doc
    items = doc.pop("items", None)
    if items is None or not str(doc.get("kind") or "").endswith("List"):
        return doc, [msgspec.Raw(data)]
    return doc, items


def plainly_running(status: dict[str, Any]) -> bool:
    """Running, no init containers, every container ready and never restarted.

    Most pods of any cluster: no pod finding can come from such a status alone (only from events
    about the pod), which is what lets the loader keep the ``PlainPod`` view of them.
    """
    if status.get("phase") != "Running" or "initContainerStatuses" in status:
        return False
    statuses = status.get("containerStatuses")
    if not isinstance(statuses, list) or not statuses:
        return False
    for cs in statuses:
        if not isinstance(cs, dict) or cs.get("ready") is not True or cs.get("restartCount"):
            return False
    return True


def decode_items(
    raws: Iterable[msgspec.Raw], *, kind: str = ""
) -> Iterator[tuple[AnalysisItem, msgspec.Raw]]:
    """Each raw item decoded into the analysis view: (object, its raw slice).

    A plainly running pod comes as a ``PlainPod``; the caller decodes it again whole
    (``decode_whole_pod``) when something needs more of it.

    The schema is guessed from the item's first bytes (serializers write ``kind`` first or second)
    or else the previous item's kind, and a pod's plainness from the previous pod's; the decoded
    ``kind`` and status are then checked, and a wrong guess costs one more decode of that item,
    never a wrong view.
    """
    guess_pod = kind == "Pod"
    guess_plain = True
    pod, generic, kind_head = _pod.decode, _generic.decode, _KIND_HEAD.search
    for raw in raws:
        head = kind_head(raw, 0, _PEEK)
        if head is not None:
            guess_pod = head[1] is not None
        if guess_pod:
            if guess_plain:
                view = _plain_view(raw)
                if view is not None and (view.kind or kind) == "Pod":
                    if view.plainly_running():
                        yield view, raw
                        continue
                    guess_plain = False  # the view just said so: no second test on the dict
                    yield _fit("Pod", pod(raw)), raw
                    continue
            obj = pod(raw)
            actual = obj.get("kind") or kind
            if actual == "Pod":
                status = obj.get("status")
                guess_plain = status.__class__ is dict and plainly_running(status)
                yield _fit("Pod", obj), raw
                continue
            obj = generic(raw)
            guess_pod = False
        else:
            obj = generic(raw)
            actual = obj.get("kind") or kind
            if actual == "Pod":
                obj = pod(raw)
                guess_pod = True
        yield _fit(actual, obj), raw


def _plain_view(raw: msgspec.Raw) -> PlainPod | None:
    """The ``PlainPod`` view, or None when the item does not fit it (then the full view decides)."""
    try:
        return _plain_pod.decode(raw)
    except msgspec.ValidationError:
        return None


def _fit(kind: Any, obj: dict[str, Any]) -> dict[str, Any]:
    """``strip`` for the analysis view, which never decodes managedFields in the first place."""
    if kind == "Secret" or kind == "ConfigMap":
        return strip(kind, obj)
    metadata = obj.get("metadata")
    if metadata is not None:  # NB: a dict: the schema says so
        annotations = metadata.get("annotations")
        if annotations.__class__ is dict and _LAST_APPLIED in annotations:
            del annotations[_LAST_APPLIED]
    return obj


def decode_whole_pod(raw: msgspec.Raw) -> dict[str, Any]:
    """A pod kept in the plain view, decoded again in the full analysis view."""
    return strip("Pod", _pod.decode(raw))


def decode_list_page(kind: str, body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page of a LIST response (one kind) into the analysis view: (items, list metadata)."""
    page = _pages[kind == "Pod"].decode(body)
    metadata = page.get("metadata")
    items = [strip(kind, item) for item in page.get("items") or ()]
    return items, metadata if isinstance(metadata, dict) else {}
