"""Decoding objects into the analysis view: only the fields analyzers read, secrets never decoded.

Diagnosis reads every object of a cluster but looks at a small part of each: a Pod's env, volume
mounts, image and container ids are never consulted. Decoding with msgspec into ``TypedDict``
schemas that name only the fields analyzers use skips the rest inside the decoder (no Python
object is ever built for it), which makes reading a snapshot cheaper than a plain ``orjson.loads``.
It also makes privacy structural: env values, Secret ``data``/``stringData`` and managed fields
are not dropped after the fact, they are never materialised. Values stay plain ``dict``/``list``
so analyzers keep reading them with ``.get``.

A document that does not fit the schemas (a wrong type where a mapping is expected) raises
``msgspec.ValidationError``; callers then fall back to the tolerant, fully redacted path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypedDict

import msgspec

__all__ = ["ANALYSIS_ONLY", "DecodeError", "decode_items", "decode_list_page", "split_document", "strip"]

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
    livenessProbe: Any
    readinessProbe: Any
    startupProbe: Any


class _PodSpec(TypedDict, total=False):
    containers: list[_Container]
    initContainers: list[_Container]
    volumes: list[_Volume]
    nodeName: Any
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
_generic: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_Generic)
_document = msgspec.json.Decoder(_Document | list[msgspec.Raw])
_pages: dict[bool, msgspec.json.Decoder[Any]] = {
    True: msgspec.json.Decoder(_PodPage),
    False: msgspec.json.Decoder(_GenericPage),
}

_PEEK = 48
_POD_KIND = b'"kind":"Pod"'

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


def decode_items(raws: Iterable[msgspec.Raw], *, kind: str = "") -> Iterator[tuple[dict[str, Any], int]]:
    """Each raw item decoded into the analysis view, with the number of bytes it took.

    The schema is guessed from the item's first bytes (serializers write ``kind`` first or second)
    or else the previous item's kind; the decoded ``kind`` is then checked, and a wrong guess costs
    one more decode of that item, never a wrong view.
    """
    guess_pod = kind == "Pod"
    for raw in raws:
        head = memoryview(raw)[:_PEEK].tobytes()
        if b'"kind":' in head:
            guess_pod = _POD_KIND in head
        obj = (_pod if guess_pod else _generic).decode(raw)
        actual = obj.get("kind") or kind
        is_pod = actual == "Pod"
        if is_pod != guess_pod:
            obj = (_pod if is_pod else _generic).decode(raw)
            guess_pod = is_pod
        if isinstance(actual, str) and actual:
            obj = strip(actual, obj)
        yield obj, len(raw)


def decode_list_page(kind: str, body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page of a LIST response (one kind) into the analysis view: (items, list metadata)."""
    page = _pages[kind == "Pod"].decode(body)
    metadata = page.get("metadata")
    items = [strip(kind, item) for item in page.get("items") or ()]
    return items, metadata if isinstance(metadata, dict) else {}
