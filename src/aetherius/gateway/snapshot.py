"""Snapshot files: a cluster's state read from disk instead of an API (see DIAGNOSIS_CONTRACT.md).

JSON or YAML by content, a ``List``/typed list or a multi-document stream, with Aetherius'
``PodLogs`` kind for container logs. Objects that cannot be used (no kind, no metadata.name, not a
mapping) are skipped and counted as warnings; a file that is not a snapshot at all raises
``SnapshotError`` with a one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from aetherius.gateway.kinds import KINDS
from aetherius.gateway.selectors import field_matcher, label_matcher

__all__ = ["LogKey", "SnapshotBackend", "SnapshotError", "SnapshotState", "load_snapshot", "parse_snapshot"]

LogKey = tuple[str, str, str, bool]  # namespace, pod, container, previous
CLUSTER_ANNOTATION = "aetherius.io/cluster"
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SnapshotError(Exception):
    """The file is not a snapshot: not JSON/YAML, truncated, or holding no objects."""


@dataclass
class SnapshotState:
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    logs: dict[LogKey, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    ignored: int = 0  # objects of kinds Aetherius does not read
    cluster: str = ""

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


def _add(state: SnapshotState, obj: Any, where: str) -> None:
    if not isinstance(obj, dict):
        state.warnings.append(f"{where}: not an object, skipped")
        return
    kind = obj.get("kind")
    items = obj.get("items")
    if isinstance(kind, str) and kind.endswith("List") and kind != "PodLogs":
        if not isinstance(items, list):
            state.warnings.append(f"{where}: {kind} without an items list, skipped")
            return
        item_kind = kind[: -len("List")] if kind != "List" else None
        for i, item in enumerate(items):
            if item_kind and isinstance(item, dict) and not item.get("kind"):
                item = {**item, "kind": item_kind}
            _add(state, item, f"{where}.items[{i}]")
        return
    metadata = obj.get("metadata")
    if not isinstance(kind, str) or not kind:
        state.warnings.append(f"{where}: no kind, skipped")
        return
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        state.warnings.append(f"{where}: {kind} without metadata.name, skipped")
        return
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        state.warnings.append(f"{where}: {kind} {metadata['name']} has a non-string namespace, skipped")
        return
    if kind == "PodLogs":
        text, container = obj.get("text"), obj.get("container")
        if not isinstance(text, str) or not isinstance(container, str):
            state.warnings.append(f"{where}: PodLogs {metadata['name']} without container/text, skipped")
            return
        key = (namespace or "", metadata["name"], container, bool(obj.get("previous")))
        state.logs[key] = text
        return
    if kind not in KINDS:
        state.ignored += 1
        return
    if kind == "Event":
        obj = _normalize_event(obj)
    state.objects.setdefault(kind, []).append(obj)


def parse_snapshot(data: bytes, *, name: str = "snapshot") -> SnapshotState:
    """Parse snapshot bytes; raises ``SnapshotError`` when it is not a snapshot."""
    state = SnapshotState(cluster=name)
    for i, doc in enumerate(_decode(data)):
        if isinstance(doc, dict):
            annotations = (doc.get("metadata") or {}) if isinstance(doc.get("metadata"), dict) else {}
            cluster = (annotations.get("annotations") or {}) if isinstance(annotations, dict) else {}
            if isinstance(cluster, dict) and isinstance(cluster.get(CLUSTER_ANNOTATION), str):
                state.cluster = cluster[CLUSTER_ANNOTATION]
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


class SnapshotBackend:
    """Answers gateway reads from a parsed snapshot (redaction is idempotent, so it works in place)."""

    source = "snapshot"

    def __init__(self, state: SnapshotState) -> None:
        self.state = state
        self.cluster = state.cluster
        self.warnings = state.warnings

    async def list(
        self, kind: str, *, namespace: str | None, label_selector: str | None, field_selector: str | None
    ) -> list[dict[str, Any]]:
        items = self.state.objects.get(kind, [])
        labels_ok = label_matcher(label_selector)
        fields_ok = field_matcher(field_selector)
        out = []
        for obj in items:
            meta = obj["metadata"]
            if namespace and KINDS[kind].namespaced and meta.get("namespace") != namespace:
                continue
            labels = meta.get("labels")
            if label_selector and not labels_ok(labels if isinstance(labels, dict) else {}):
                continue
            if field_selector and not fields_ok(obj):
                continue
            out.append(obj)
        return out

    async def get(self, kind: str, *, namespace: str | None, name: str) -> dict[str, Any] | None:
        for obj in self.state.objects.get(kind, []):
            meta = obj["metadata"]
            if meta.get("name") == name and (
                not KINDS[kind].namespaced or meta.get("namespace") == namespace
            ):
                return obj
        return None

    async def logs(
        self, *, namespace: str, name: str, container: str, previous: bool, tail_lines: int, max_bytes: int
    ) -> str | None:
        text = self.state.logs.get((namespace, name, container, previous))
        if text is None:
            return None
        lines = text.splitlines()[-tail_lines:] if tail_lines > 0 else text.splitlines()
        cut = "\n".join(lines).encode()[-max_bytes:]
        return cut.decode("utf-8", "replace")
