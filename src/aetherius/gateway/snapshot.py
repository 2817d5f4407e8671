"""Snapshot files: a cluster's state read from disk instead of an API (see docs/diagnosis-contract.md).

JSON or YAML by content, a ``List``/typed list or a multi-document stream, with Aetherius'
``PodLogs`` kind for container logs. Objects that cannot be used (no kind, no metadata.name, not a
mapping) are skipped and counted as warnings; a file that is not a snapshot at all raises
``SnapshotError`` with a one-line message.

Two ways in. A well-formed JSON snapshot is decoded straight into the analysis view
(``gateway.decode``: only the fields analyzers read; env values and Secret data never decoded);
plainly running pods no event is about (most pods) are kept as typed ``PlainPod`` Structs, decoded
again in full from their bytes for whole reads (``get``, ``list(analysis=False)``).
Anything else (YAML, wrong types, nested lists) takes the tolerant path: a full decode, each
retained object redacted by ``redact_object`` at load time. Either way Secrets keep only their
metadata and nothing unredacted that the fast path would not have decoded is retained.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson
import yaml

from aetherius.gateway.decode import (
    AnalysisItem,
    DecodeError,
    PlainPod,
    decode_items,
    decode_whole_pod,
    split_document,
    strip,
)
from aetherius.gateway.kinds import KINDS
from aetherius.gateway.redact import redact_object
from aetherius.kube.selectors import field_matcher, label_matcher

__all__ = [
    "LogKey",
    "SnapshotBackend",
    "SnapshotError",
    "SnapshotState",
    "load_snapshot",
    "parse_snapshot",
    "paused_gc",
]

LogKey = tuple[str, str, str, bool]  # namespace, pod, container, previous
CLUSTER_ANNOTATION = "aetherius.io/cluster"
# When ``aetherius snapshot`` read the cluster: a snapshot's "now", so ages are measured from it.
CAPTURED_AT_ANNOTATION = "aetherius.io/captured-at"
# Every kind ``aetherius snapshot`` read, empty ones included (comma-separated): a kind read and
# found empty says "none exist", a kind never read says "not checked".
KINDS_READ_ANNOTATION = "aetherius.io/kinds-read"
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large acyclic tree of dicts.

    Decoding a cluster allocates millions of containers; each allocation burst triggers a
    collection that walks every object already built, which costs more than the decoding itself.
    Decoded JSON has no reference cycles, so nothing is lost by collecting afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class SnapshotError(Exception):
    """The file is not a snapshot: not JSON/YAML, truncated, or holding no objects."""


@dataclass
class SnapshotState:
    objects: dict[str, list[AnalysisItem]] = field(default_factory=dict)
    # Bytes of the input each object took, parallel to ``objects`` (what the audit reports).
    sizes: dict[str, list[int]] = field(default_factory=dict)
    logs: dict[LogKey, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    ignored: int = 0  # objects of kinds Aetherius does not read
    cluster: str = ""
    # Pods kept in the plain view (``PlainPod``), by id: their bytes, for whole reads.
    plain: dict[int, msgspec.Raw] = field(default_factory=dict)
    captured_at: str = ""  # CAPTURED_AT_ANNOTATION, when the snapshot carries it

    def hold(self, kind: str) -> None:
        """Record that ``kind`` was read, even with no object of it (an empty typed list)."""
        if kind in KINDS:
            self.objects.setdefault(kind, [])
            self.sizes.setdefault(kind, [])

    def take_annotations(self, doc: dict[str, Any]) -> None:
        """The cluster name, the capture time and the kinds read, from a document's annotations."""
        metadata = doc.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        if not isinstance(annotations, dict):
            return
        cluster, captured, kinds = (
            annotations.get(CLUSTER_ANNOTATION),
            annotations.get(CAPTURED_AT_ANNOTATION),
            annotations.get(KINDS_READ_ANNOTATION),
        )
        if isinstance(cluster, str):
            self.cluster = cluster
        if isinstance(captured, str):
            self.captured_at = captured
        if isinstance(kinds, str):
            for kind in kinds.split(","):
                self.hold(kind.strip())

    def count(self) -> int:
        return sum(len(items) for items in self.objects.values()) + len(self.logs)


def _decode(data: bytes) -> list[Any]:
    stripped = data.lstrip()
    if not stripped:
        raise SnapshotError("the snapshot is empty")
    if stripped[:1] in (b"{", b"["):
        try:
            return [orjson.loads(data)]
        except orjson.JSONDecodeError as exc:
            raise SnapshotError(f"the snapshot is not valid JSON (truncated?): {exc}") from None
    try:
        return [doc for doc in yaml.load_all(data, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SnapshotError(f"the snapshot is neither JSON nor YAML: {first}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise SnapshotError(f"the snapshot could not be read: {exc}") from None


def _normalize_event(obj: dict[str, Any]) -> dict[str, Any]:
    """events.k8s.io/v1 → the core/v1 field names the analyzers read."""
    if not str(obj.get("apiVersion", "")).startswith("events.k8s.io"):
        return obj
    series = obj.get("series") if isinstance(obj.get("series"), dict) else {}
    out = dict(obj)
    out["involvedObject"] = obj.get("regarding") or {}
    out["message"] = obj.get("note") or ""
    out["count"] = (series or {}).get("count") or obj.get("deprecatedCount") or 1
    out["lastTimestamp"] = (
        (series or {}).get("lastObservedTime") or obj.get("deprecatedLastTimestamp") or obj.get("eventTime")
    )
    out["firstTimestamp"] = obj.get("deprecatedFirstTimestamp") or obj.get("eventTime")
    out["source"] = {"component": obj.get("reportingController") or ""}
    return out


_NAMESPACE_TYPES = (str, type(None))


class _Fallback(Exception):
    """The fast path met something only the tolerant path handles."""


def _add(state: SnapshotState, obj: Any, where: str, size: int = -1) -> bool:
    """Retain one object (``size`` -1: measured here, on the tolerant path only); False: skipped."""
    if not isinstance(obj, dict):
        state.warnings.append(f"{where}: not an object, skipped")
        return False
    kind = obj.get("kind")
    items = obj.get("items")
    if isinstance(kind, str) and kind.endswith("List") and kind != "PodLogs":
        if not isinstance(items, list):
            state.warnings.append(f"{where}: {kind} without an items list, skipped")
            return False
        item_kind = kind[: -len("List")] if kind != "List" else None
        if item_kind:
            state.hold(item_kind)
        for i, item in enumerate(items):
            if item_kind and isinstance(item, dict) and not item.get("kind"):
                item = {**item, "kind": item_kind}
            _add(state, item, f"{where}.items[{i}]")
        return False
    metadata = obj.get("metadata")
    if not isinstance(kind, str) or not kind:
        state.warnings.append(f"{where}: no kind, skipped")
        return False
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        state.warnings.append(f"{where}: {kind} without metadata.name, skipped")
        return False
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        state.warnings.append(f"{where}: {kind} {metadata['name']} has a non-string namespace, skipped")
        return False
    if kind == "PodLogs":
        text, container = obj.get("text"), obj.get("container")
        if not isinstance(text, str) or not isinstance(container, str):
            state.warnings.append(f"{where}: PodLogs {metadata['name']} without container/text, skipped")
            return False
        key = (namespace or "", metadata["name"], container, bool(obj.get("previous")))
        state.logs[key] = text
        return False
    if kind not in KINDS:
        state.ignored += 1
        return False
    if size < 0:
        try:
            size = len(orjson.dumps(obj))
        except TypeError:  # a YAML value JSON has no form for
            size = 0
        obj = redact_object(kind, strip(kind, obj))
    if kind == "Event":
        obj = _normalize_event(obj)
    state.objects.setdefault(kind, []).append(obj)
    state.sizes.setdefault(kind, []).append(size)
    return True


def parse_snapshot(data: bytes, *, name: str = "snapshot") -> SnapshotState:
    """Parse snapshot bytes; raises ``SnapshotError`` when it is not a snapshot."""
    with paused_gc():
        return _parse(data, name)


def _parse(data: bytes, name: str) -> SnapshotState:
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            state = _parse_fast(data, name)
        except (*DecodeError, _Fallback):
            pass
        else:
            if state.count() == 0 and state.ignored == 0:
                raise SnapshotError("the snapshot holds no Kubernetes objects")
            return state
    return _parse_tolerant(data, name)


def _parse_fast(data: bytes, name: str) -> SnapshotState:
    state = SnapshotState(cluster=name)
    top, raws = split_document(data)
    list_kind = str((top or {}).get("kind") or "")
    item_kind = list_kind[: -len("List")] if list_kind.endswith("List") and list_kind != "List" else ""
    if top is not None:
        state.take_annotations(top)
    if item_kind:
        state.hold(item_kind)
    plain: list[tuple[int, msgspec.Raw]] = []  # (position among the pods, bytes)
    plain_keys: dict[tuple[str, str], int] = {}  # (namespace, name) → index in ``plain``
    retained: dict[str, tuple[list[AnalysisItem], list[int]]] = {}
    for i, (obj, raw) in enumerate(decode_items(raws, kind=item_kind)):
        if isinstance(obj, PlainPod):
            lists = retained.get("Pod")
            if lists is None:
                lists = retained["Pod"] = (
                    state.objects.setdefault("Pod", []),
                    state.sizes.setdefault("Pod", []),
                )
            key, slot = (obj.metadata.namespace, obj.metadata.name), len(plain)
            if plain_keys.setdefault(key, slot) == slot:
                plain.append((len(lists[0]), raw))
                lists[0].append(obj)
            else:
                lists[0].append(decode_whole_pod(raw))  # a second pod of that name: never plain
            lists[1].append(len(raw))
            continue
        kind = obj.get("kind")
        if not kind and item_kind:
            kind = obj["kind"] = item_kind
        # NB: the common case first, checked inline (this loop runs for every object of the
        # cluster): a kind Aetherius reads, a name and a string namespace. Everything else goes
        # through ``_add``, which says what is wrong with it.
        metadata = obj.get("metadata")
        if (
            kind.__class__ is str
            and kind in KINDS
            and metadata is not None
            and metadata.get("name").__class__ is str
            and metadata.get("namespace").__class__ in _NAMESPACE_TYPES
        ):
            lists = retained.get(kind)
            if lists is None:
                lists = retained[kind] = (
                    state.objects.setdefault(kind, []),
                    state.sizes.setdefault(kind, []),
                )
            if kind == "Event":
                obj = _normalize_event(obj)
            lists[0].append(obj)
            lists[1].append(len(raw))
            continue
        if isinstance(kind, str) and kind.endswith("List") and kind != "PodLogs":
            raise _Fallback
        suffix = f"[{i}]" if top is None else (f".items[{i}]" if list_kind.endswith("List") else "")
        _add(state, obj, "document 1" + suffix, len(raw))
    if plain:
        _keep_plain(state, plain, plain_keys)
    return state


def _keep_plain(
    state: SnapshotState, plain: list[tuple[int, msgspec.Raw]], keys: dict[tuple[str, str], int]
) -> None:
    """Pods with events about them are analyzed in full: decode those again whole."""
    pods = state.objects["Pod"]
    # NB: pods whose logs the snapshot carries are analyzed whole too (errors a Ready pod logs).
    for namespace, name, _, _ in state.logs:
        found = keys.pop((namespace, name), None)
        if found is not None:
            position, raw = plain[found]
            pods[position] = decode_whole_pod(raw)
    for event in state.objects.get("Event", ()):
        involved = event.get("involvedObject") if isinstance(event, dict) else None
        if isinstance(involved, dict) and involved.get("kind") == "Pod":
            found = keys.pop((str(involved.get("namespace") or ""), str(involved.get("name") or "")), None)
            if found is not None:
                position, raw = plain[found]
                pods[position] = decode_whole_pod(raw)
    state.plain = {id(pods[plain[found][0]]): plain[found][1] for found in keys.values()}


def _parse_tolerant(data: bytes, name: str) -> SnapshotState:
    state = SnapshotState(cluster=name)
    for i, doc in enumerate(_decode(data)):
        if isinstance(doc, dict):
            state.take_annotations(doc)
        elif not isinstance(doc, list):
            raise SnapshotError(
                f"the snapshot holds no Kubernetes objects (document {i + 1} is a {type(doc).__name__})"
            )
        if isinstance(doc, list):
            for j, item in enumerate(doc):
                _add(state, item, f"document {i + 1}[{j}]")
        else:
            _add(state, doc, f"document {i + 1}")
    if state.count() == 0 and state.ignored == 0:
        raise SnapshotError("the snapshot holds no Kubernetes objects")
    return state


def load_snapshot(path: Path) -> SnapshotState:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror or exc}") from None
    return parse_snapshot(data, name=path.stem)


def _name(obj: AnalysisItem) -> Any:
    return obj.metadata.name if isinstance(obj, PlainPod) else obj["metadata"].get("name")


def _namespace(obj: AnalysisItem) -> Any:
    return obj.metadata.namespace if isinstance(obj, PlainPod) else obj["metadata"].get("namespace")


class SnapshotBackend:
    """Answers gateway reads from a parsed snapshot (redaction is idempotent, so it works in place).

    The snapshot holds the analysis view only, so both views answer with it, except for pods
    kept in the plain view: whole reads (``analysis=False``, ``get``) decode those again in full.
    """

    source = "snapshot"
    secret_metadata = True  # a snapshot holds Secrets' metadata only (when it has them at all)

    def __init__(self, state: SnapshotState) -> None:
        self.state = state
        self.cluster = state.cluster
        self.warnings = state.warnings
        self.captured_at = state.captured_at

    def held_logs(self) -> list[tuple[str, str, str]]:
        """(namespace, pod, container) of every current-instance log the snapshot carries."""
        return sorted((ns, pod, c) for ns, pod, c, previous in self.state.logs if not previous)

    def holds(self, kind: str) -> bool:
        """Whether the snapshot read ``kind`` at all (an empty typed list counts)."""
        return kind in self.state.objects

    async def list(
        self,
        kind: str,
        *,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        analysis: bool = False,
    ) -> tuple[list[AnalysisItem], int]:
        items = self.state.objects.get(kind, [])
        sizes = self.state.sizes.get(kind, [])
        if not analysis:
            items = [self._whole(obj) for obj in items] if kind == "Pod" and self.state.plain else items
        if not namespace and not label_selector and not field_selector:
            return list(items), sum(sizes)
        labels_ok = label_matcher(label_selector)
        fields_ok = field_matcher(field_selector)
        out = []
        size = 0
        for obj, obj_size in zip(items, sizes, strict=True):
            # NB: an analysis read is never filtered by labels or fields (``scan_objects``).
            whole = self._whole(obj) if (label_selector or field_selector) else obj
            if namespace and KINDS[kind].namespaced and _namespace(whole) != namespace:
                continue
            if isinstance(whole, dict):
                labels = whole["metadata"].get("labels")
                if label_selector and not labels_ok(labels if isinstance(labels, dict) else {}):
                    continue
                if field_selector and not fields_ok(whole):
                    continue
            out.append(obj)
            size += obj_size
        return out, size

    async def get(self, kind: str, *, namespace: str | None, name: str) -> tuple[dict[str, Any] | None, int]:
        items = self.state.objects.get(kind, [])
        for obj, size in zip(items, self.state.sizes.get(kind, []), strict=True):
            if _name(obj) == name and (not KINDS[kind].namespaced or _namespace(obj) == namespace):
                return self._whole(obj), size
        return None, 0

    def _whole(self, obj: AnalysisItem) -> dict[str, Any]:
        """The full analysis view of a pod kept in the plain view (whole reads, not diagnosis)."""
        if isinstance(obj, dict):
            return obj
        raw = self.state.plain[id(obj)]
        try:
            return decode_whole_pod(raw)
        except DecodeError:  # a field only the full view decodes does not fit: the tolerant view
            return redact_object("Pod", strip("Pod", orjson.loads(memoryview(raw))))

    async def logs(
        self, *, namespace: str, name: str, container: str, previous: bool, tail_lines: int, max_bytes: int
    ) -> str | None:
        text = self.state.logs.get((namespace, name, container, previous))
        if text is None:
            return None
        lines = text.splitlines()[-tail_lines:] if tail_lines > 0 else text.splitlines()
        cut = "\n".join(lines).encode()[-max_bytes:]
        return cut.decode("utf-8", "replace")
