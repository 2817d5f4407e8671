"""The cluster state indexed once, so every analyzer is a lookup, not a scan.

Built in one pass over each kind: pods by namespace and node; events by involved object;
objects by (namespace, name); the owner chain of each pod. Analyzers never loop over another kind's
objects per object, which keeps a diagnosis O(objects).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aetherius.diagnosis.model import Owner
from aetherius.gateway.decode import AnalysisItem, PlainPod, plainly_running

__all__ = [
    "Ev",
    "Index",
    "Malformed",
    "age_seconds",
    "parse_time",
    "pod_claims",
    "pod_name",
    "pod_phase",
    "pod_ready",
]

Obj = dict[str, Any]
Key = tuple[str, str]  # namespace, name
# A pod as the index files it: a dict, or (quiet pods of a snapshot) a ``PlainPod``.
Pod = AnalysisItem


class Malformed(ValueError):
    """An object lacks a field its analyzer needs; it is skipped with a warning."""


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age_seconds(value: Any, now: datetime) -> float | None:
    parsed = parse_time(value)
    return None if parsed is None else (now - parsed).total_seconds()


@dataclass(slots=True)
class Ev:
    """An event in the core/v1 shape, reduced to what rules read."""

    reason: str
    message: str
    count: int
    type: str
    last: str  # RFC 3339
    kind: str
    namespace: str
    name: str
    uid: str

    def line(self) -> str:
        return f"event {self.reason} x{self.count}: {self.message}"


def as_list(value: Any) -> list[Any]:
    """A list field, or nothing when it is missing or of the wrong type."""
    return value if isinstance(value, list) else []


def meta(obj: Obj) -> Obj:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise Malformed("no metadata")
    return metadata


def section(obj: Obj, name: str) -> Obj:
    """``obj[name]`` as a dict; a missing or mistyped spec/status makes the object malformed."""
    value = obj.get(name)
    if not isinstance(value, dict):
        raise Malformed(f"no {name}" if value is None else f"{name} is a {type(value).__name__}")
    return value


def _ev(obj: Obj) -> Ev | None:
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        return None
    count = obj.get("count")
    last = obj.get("lastTimestamp") or obj.get("eventTime") or obj.get("firstTimestamp") or ""
    if not isinstance(last, str):
        last = ""
    return Ev(
        reason=str(obj.get("reason") or ""),
        message=str(obj.get("message") or "").strip(),
        count=count if isinstance(count, int) and count > 0 else 1,
        type=str(obj.get("type") or ""),
        last=last,
        kind=str(involved.get("kind") or ""),
        namespace=str(involved.get("namespace") or ""),
        name=str(involved.get("name") or ""),
        uid=str(involved.get("uid") or ""),
    )


@dataclass
class Index:
    # NB: a ``PlainPod`` is filed under ``pods``, ``pods_by_ns`` and ``pods_by_node`` only: it is
    # quiet (no event is about it), so no analyzer looks it up by name.
    objects: dict[str, dict[Key, Obj]] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    pods_by_ns: dict[str, list[Pod]] = field(default_factory=lambda: defaultdict(list))
    pods_by_node: dict[str, list[Pod]] = field(default_factory=lambda: defaultdict(list))
    events_by_ref: dict[tuple[str, str, str], list[Ev]] = field(default_factory=lambda: defaultdict(list))
    events_by_ns: dict[str, list[Ev]] = field(default_factory=lambda: defaultdict(list))
    kinds_present: set[str] = field(default_factory=set)
    # ids of dict pods Running with every container ready and never restarted (same pass).
    plain: set[int] = field(default_factory=set)
    # ids of those no event is about: nothing to analyze. (A ``PlainPod`` is in neither: quiet
    # by construction, it is never analyzed.)
    quiet: set[int] = field(default_factory=set)
    _labels: dict[str, dict[tuple[str, str], list[int]]] | None = None
    # (kind, namespace, name) of a ReplicaSet/Job → its Deployment/CronJob owner, or None.
    _tops: dict[tuple[str, str, str], tuple[Owner, str] | None] = field(default_factory=dict)
    newest: str = ""
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, state: Mapping[str, Sequence[AnalysisItem]]) -> Index:
        index = cls(_labels={})
        newest = ""
        plain_refs: list[tuple[int, tuple[str, str, str]]] = []
        for kind, items in state.items():
            index.kinds_present.add(kind)
            if kind == "Event":
                for obj in items:
                    ev = _ev(obj) if isinstance(obj, dict) else None
                    if ev is None:
                        index.warnings.append("Event without involvedObject skipped")
                        continue
                    index.events_by_ref[(ev.kind, ev.namespace, ev.name)].append(ev)
                    index.events_by_ns[ev.namespace].append(ev)
                    if ev.last > newest:
                        newest = ev.last
                continue
            table: dict[Key, Obj] = {}
            for obj in items:
                if isinstance(obj, PlainPod):
                    newest = index._add_plain_pod(obj, newest)
                    continue
                metadata = obj.get("metadata")
                if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
                    index.warnings.append(f"{kind} without metadata.name skipped")
                    continue
                namespace = metadata.get("namespace") or ""
                if not isinstance(namespace, str):
                    index.warnings.append(f"{kind} {metadata['name']}: bad namespace, skipped")
                    continue
                table[(namespace, metadata["name"])] = obj
                created = metadata.get("creationTimestamp")
                if isinstance(created, str) and created > newest:
                    newest = created
                if kind == "Pod":
                    newest = index._add_pod(obj, namespace, metadata, newest)
                    if id(obj) in index.plain:
                        plain_refs.append((id(obj), ("Pod", namespace, metadata["name"])))
            index.objects[kind] = table
        refs = index.events_by_ref
        index.quiet = {pod for pod, ref in plain_refs if ref not in refs}
        index.newest = newest
        return index

    def _add_plain_pod(self, pod: PlainPod, newest: str) -> str:
        """``_add_pod`` for a ``PlainPod`` (its types were checked by the decoder: no checks here).

        NB: not filed in ``plain``/``quiet``, which are about dict pods: a ``PlainPod`` is quiet by
        construction (the loader keeps that view only of pods no event is about).
        """
        metadata, status = pod.metadata, pod.status
        self.pods.append(pod)
        in_namespace = self.pods_by_ns[metadata.namespace]
        in_namespace.append(pod)
        labels, by_label = metadata.labels, self._labels
        if labels and by_label is not None:
            table = by_label.get(metadata.namespace)
            if table is None:
                table = by_label[metadata.namespace] = defaultdict(list)
            position = len(in_namespace) - 1
            for pair in labels.items():
                table[pair].append(position)
        node = pod.spec.nodeName
        if node is not None:
            self.pods_by_node[node].append(pod)
        stamp = metadata.creationTimestamp
        if stamp is not None and stamp > newest:
            newest = stamp
        for cs in status.containerStatuses:
            for state in (cs.state, cs.lastState):
                if state is not None:
                    for detail in (state.running, state.terminated, state.waiting):
                        if detail is not None:
                            for stamp in (detail.startedAt, detail.finishedAt):
                                if stamp is not None and stamp > newest:
                                    newest = stamp
        for cond in status.conditions:
            stamp = cond.lastTransitionTime
            if stamp is not None and stamp > newest:
                newest = stamp
        return newest

    def _add_pod(self, pod: Obj, namespace: str, metadata: Obj, newest: str) -> str:
        """File the pod under its namespace, labels and node; return ``newest`` or a newer stamp.

        NB: the label index (``pods_matching``) is filled here, while the pod's metadata is at
        hand: a second pass over every pod's labels later costs a cache miss per pod.
        """
        self.pods.append(pod)
        in_namespace = self.pods_by_ns[namespace]
        in_namespace.append(pod)
        labels, by_label = metadata.get("labels"), self._labels
        if isinstance(labels, dict) and labels and by_label is not None:
            table = by_label.get(namespace)
            if table is None:
                table = by_label[namespace] = defaultdict(list)
            position = len(in_namespace) - 1
            for pair in labels.items():
                if isinstance(pair[1], str):
                    table[pair].append(position)
        spec, status = pod.get("spec"), pod.get("status")
        if isinstance(spec, dict):
            node = spec.get("nodeName")
            if isinstance(node, str):
                self.pods_by_node[node].append(pod)
        if not isinstance(status, dict):
            return newest
        if plainly_running(status):
            self.plain.add(id(pod))
        # NB: the loops run for every pod of the cluster, so they stay free of calls.
        for key in ("containerStatuses", "initContainerStatuses"):
            statuses = status.get(key)
            if not isinstance(statuses, list):
                continue
            for cs in statuses:
                if not isinstance(cs, dict):
                    continue
                for state in (cs.get("state"), cs.get("lastState")):
                    if isinstance(state, dict):
                        for detail in state.values():
                            if isinstance(detail, dict):
                                stamp = detail.get("finishedAt")
                                if isinstance(stamp, str) and stamp > newest:
                                    newest = stamp
                                stamp = detail.get("startedAt")
                                if isinstance(stamp, str) and stamp > newest:
                                    newest = stamp
        conditions = status.get("conditions")
        if isinstance(conditions, list):
            for cond in conditions:
                if isinstance(cond, dict):
                    stamp = cond.get("lastTransitionTime")
                    if isinstance(stamp, str) and stamp > newest:
                        newest = stamp
        return newest

    # lookups -------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get(kind, {}).get((namespace, name))

    def of_kind(self, kind: str) -> dict[Key, Obj]:
        return self.objects.get(kind, {})

    def has(self, kind: str) -> bool:
        """Whether the state includes this kind at all (absent ≠ empty: no false 'missing')."""
        return kind in self.kinds_present

    def events(self, kind: str, namespace: str, name: str, uid: str = "") -> list[Ev]:
        found = self.events_by_ref.get((kind, namespace, name), [])
        if uid and found:
            return [ev for ev in found if not ev.uid or ev.uid == uid]
        return found

    def pods_matching(self, namespace: str, selector: dict[str, Any]) -> list[Pod]:
        """Pods of a namespace whose labels include every pair of ``selector`` (an inverted index)."""
        if self._labels is None:
            self._labels = {}
            for ns, pods in self.pods_by_ns.items():
                table: dict[tuple[str, str], list[int]] = defaultdict(list)
                for i, pod in enumerate(pods):
                    labels = (
                        pod.metadata.labels if isinstance(pod, PlainPod) else pod["metadata"].get("labels")
                    )
                    if isinstance(labels, dict):
                        for pair in labels.items():
                            if isinstance(pair[1], str):
                                table[pair].append(i)
                self._labels[ns] = table
        found = self._labels.get(namespace)
        if not found or not selector:
            return []
        sets = sorted((found.get((str(k), str(v)), []) for k, v in selector.items()), key=len)
        if not sets[0]:
            return []
        chosen = set(sets[0]).intersection(*sets[1:]) if len(sets) > 1 else set(sets[0])
        pods = self.pods_by_ns[namespace]
        return [pods[i] for i in sorted(chosen)]

    def label_values(self, namespace: str, key: str) -> list[str]:
        self.pods_matching(namespace, {"": ""})
        table = (self._labels or {}).get(namespace, {})
        return sorted({v for (k, v) in table if k == key})

    def owner_of(self, obj: Obj) -> tuple[Owner | None, str]:
        """The top controller (Deployment over ReplicaSet, CronJob over Job) and its uid."""
        metadata = meta(obj)
        namespace = metadata.get("namespace") or ""
        ref = _controller(metadata)
        if ref is None:
            return None, ""
        kind, name, uid = ref
        if kind in ("ReplicaSet", "Job"):
            parent_kind = "Deployment" if kind == "ReplicaSet" else "CronJob"
            parent = self.get(kind, namespace, name)
            if parent is not None:
                # NB: asked for every failing pod; a ReplicaSet's pods share the answer.
                key = (kind, namespace, name)
                if key not in self._tops:
                    up = _controller(meta(parent))
                    self._tops[key] = (
                        (Owner(kind=up[0], name=up[1]), up[2])
                        if up is not None and up[0] == parent_kind
                        else None
                    )
                found = self._tops[key]
                if found is not None:
                    return found
            elif kind == "ReplicaSet":
                labels = metadata.get("labels") or {}
                template_hash = labels.get("pod-template-hash") if isinstance(labels, dict) else None
                if isinstance(template_hash, str) and name.endswith("-" + template_hash):
                    return Owner(kind="Deployment", name=name[: -len(template_hash) - 1]), ""
        return Owner(kind=kind, name=name), uid


def pod_name(pod: Pod) -> tuple[str, str]:
    """(namespace, name) of a pod the index holds (its metadata was checked when it was filed)."""
    if isinstance(pod, PlainPod):
        return pod.metadata.namespace, pod.metadata.name
    metadata = pod["metadata"]
    return str(metadata.get("namespace") or ""), str(metadata["name"])


def pod_phase(pod: Pod) -> Any:
    if isinstance(pod, PlainPod):
        return pod.status.phase
    status = pod.get("status")
    return status.get("phase") if isinstance(status, dict) else None


def pod_ready(pod: Pod) -> bool:
    """Whether the pod's Ready condition is True (what puts it behind a Service)."""
    if isinstance(pod, PlainPod):
        for plain in pod.status.conditions:
            if plain.type == "Ready":
                return plain.status == "True"
        return False
    status = pod.get("status")
    for cond in (status.get("conditions") if isinstance(status, dict) else None) or ():
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_claims(pod: Pod) -> list[Any]:
    """The claim names of a pod's PersistentVolumeClaim volumes."""
    if isinstance(pod, PlainPod):
        return [v.persistentVolumeClaim.claimName for v in pod.spec.volumes if v.persistentVolumeClaim]
    spec = pod.get("spec")
    volumes = (spec.get("volumes") if isinstance(spec, dict) else None) or ()
    return [
        (volume.get("persistentVolumeClaim") or {}).get("claimName")
        for volume in volumes
        if isinstance(volume, dict) and volume.get("persistentVolumeClaim")
    ]


def _controller(metadata: Obj) -> tuple[str, str, str] | None:
    refs = metadata.get("ownerReferences")
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, dict) and ref.get("controller") and isinstance(ref.get("name"), str):
            return str(ref.get("kind") or ""), ref["name"], str(ref.get("uid") or "")
    return None


def group_of(owner: Owner | None, kind: str, namespace: str, name: str) -> str:
    if owner is None:
        return f"{kind}/{namespace}/{name}"
    return f"{owner.kind}/{namespace}/{owner.name}"
