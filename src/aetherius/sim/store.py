"""The cluster state: objects, one global resourceVersion, a bounded change history, a ledger.

Stored objects are never mutated after they are committed: every change stores a new dict. That
is what makes list snapshots (for ``continue``) and watch replay cheap and consistent: both hold
references to the dicts as they were at their resourceVersion.

Every change bumps the resourceVersion by exactly one and appends one history entry, so the
history is indexable by resourceVersion (``rv - base``); its watch line is encoded once, at
commit, and written as-is to every watcher that wants it.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from aetherius.sim import errors
from aetherius.sim.resources import ResourceType

Obj = dict[str, Any]

# Kinds the real server does not track metadata.generation for.
_NO_GENERATION = frozenset({"Event", "ConfigMap", "Secret", "Endpoints", "EndpointSlice", "Namespace"})


class LedgerEntry(NamedTuple):
    """One watch event the cluster emitted (one per change, in resourceVersion order)."""

    rv: int
    type: str
    kind: str
    namespace: str
    name: str
    uid: str


@dataclass(slots=True)
class Change:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: str  # storage key, e.g. "pods", "deployments.apps"
    namespace: str
    # The object as of this change (for DELETED: the last state, with the new RV); bulk-loaded
    # changes keep only their line, and ``object()`` decodes it when a filter needs it.
    obj: Obj | None
    old: Obj | None  # the object before this change, for selector transitions
    line: bytes  # b'{"type":…,"object":…}\n', encoded once

    def object(self) -> Obj:
        if self.obj is not None:
            return self.obj
        decoded: Obj = orjson.loads(self.line)["object"]
        return decoded


@dataclass(slots=True)
class _Snapshot:
    rv: int
    items: list[Obj]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_event(kind: str, obj: Obj) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value (the target is not modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class Store:
    """All objects of the cluster. Single-threaded: call it from the server's event loop only."""

    def __init__(self, *, history_size: int = 10_000, start_rv: int = 1000) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.history_size = history_size
        self._rv = start_rv
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._history: list[Change] = []
        self._history_base = start_rv + 1  # rv of _history[0]
        self.ledger: list[LedgerEntry] = []
        self._snapshots: OrderedDict[int, _Snapshot] = OrderedDict()
        self._snapshot_ids = 0
        self._changed: asyncio.Event | None = None
        self.clock = now_iso

    # -- resourceVersions and history ---------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def compacted_rv(self) -> int:
        """The highest RV one can no longer watch *from*: events after it are all retained."""
        return max(self._history_base - 1, self._rv - self.history_size)

    def changes_after(self, rv: int, *, limit: int | None = None) -> list[Change]:
        """History entries with resourceVersion > rv (the caller has checked ``compacted_rv``)."""
        start = rv + 1 - self._history_base
        if start < 0:
            raise errors.too_old(rv, self.compacted_rv + 1)
        end = len(self._history) if limit is None else min(len(self._history), start + limit)
        return self._history[start:end]

    def changed_event(self) -> asyncio.Event:
        """An event set at the next commit (watchers wait on it)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None:
            event, self._changed = self._changed, None
            event.set()

    def _trim(self) -> None:
        # NB: trimmed lazily in big slices; the logical window is exact through compacted_rv.
        excess = len(self._history) - 2 * self.history_size - 1024
        if excess > 0:
            del self._history[:excess]
            self._history_base += excess

    def commit(self, *, event_type: str, rt: ResourceType, obj: Obj, old: Obj | None) -> Obj:
        """Assign the next RV to ``obj`` (a fresh dict), store it, record history and ledger."""
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        bucket = self._objects.setdefault(rt.key, {})
        if event_type == "DELETED":
            bucket.pop((namespace, meta["name"]), None)
        else:
            bucket[(namespace, meta["name"])] = obj
        change = Change(
            rv=self._rv,
            type=event_type,
            key=rt.key,
            namespace=namespace,
            obj=obj,
            old=old,
            line=encode_event(event_type, obj),
        )
        entry = LedgerEntry(
            self._rv, event_type, obj.get("kind", rt.kind), namespace, meta["name"], meta.get("uid", "")
        )
        self._append(change, entry)
        self._notify()
        return obj

    def _append(self, change: Change, entry: LedgerEntry) -> None:
        self._history.append(change)
        self.ledger.append(entry)
        self._trim()

    def next_rv(self) -> int:
        """Reserve the next RV without committing (bulk loaders build their own entries)."""
        self._rv += 1
        return self._rv

    def append_prebuilt(self, change: Change, entry: LedgerEntry, *, stored: Obj | None = None) -> None:
        """Add a change built by a bulk loader whose RV came from ``next_rv``; ``stored`` is
        also put in the current state (else the change lives in the history only)."""
        if stored is not None:
            self._objects.setdefault(change.key, {})[(change.namespace, entry.name)] = stored
        self._append(change, entry)

    def notify(self) -> None:
        self._notify()

    # -- reads --------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self._objects.get(rt.key, {}).get((namespace if rt.namespaced else "", name))
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def find(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        return self._objects.get(rt.key, {}).get((namespace if rt.namespaced else "", name))

    def objects(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        """Current objects of a type, sorted like etcd keys (namespace, then name)."""
        bucket = self._objects.get(rt.key, {})
        keys = sorted(key for key in bucket if namespace is None or key[0] == namespace)
        return [bucket[key] for key in keys]

    def snapshot(self, items: list[Obj]) -> int:
        """Keep a list result for its continue tokens; returns the snapshot id."""
        self._snapshot_ids += 1
        self._snapshots[self._snapshot_ids] = _Snapshot(rv=self._rv, items=items)
        while len(self._snapshots) > 256:
            self._snapshots.popitem(last=False)
        return self._snapshot_ids

    def continue_token(self, snapshot_id: int, start: int) -> str:
        rv = self._snapshots[snapshot_id].rv
        raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "id": snapshot_id, "start": start})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def resume(self, token: str) -> tuple[int, int, list[Obj], int]:
        """(snapshot id, start offset, items, rv) for a continue token; 400 or 410 when unusable."""
        try:
            decoded = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            snapshot_id, start, rv = int(decoded["id"]), int(decoded["start"]), int(decoded["rv"])
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            raise errors.bad_request(f"continue key is not valid: {token[:64]}") from None
        snapshot = self._snapshots.get(snapshot_id)
        if snapshot is None or snapshot.rv != rv or rv < self.compacted_rv:
            raise errors.expired_continue()
        return snapshot_id, start, snapshot.items, rv

    def expire_snapshots(self) -> None:
        self._snapshots.clear()

    # -- writes -------------------------------------------------------------------------------

    def create(
        self, rt: ResourceType, obj: Obj, *, namespace: str | None = None, created: str | None = None
    ) -> Obj:
        obj = copy.deepcopy(obj)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise errors.invalid(
                    rt, "", "metadata.name: Required value: name or generateName is required"
                )
        if rt.namespaced:
            if namespace and meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if self.find(rt, meta.get("namespace", ""), meta["name"]) is not None:
            raise errors.already_exists(rt, meta["name"])
        meta["uid"] = meta.get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = meta.get("creationTimestamp") or created or self.clock()
        if rt.kind not in _NO_GENERATION:
            meta["generation"] = 1
        meta.pop("resourceVersion", None)
        return self.commit(event_type="ADDED", rt=rt, obj=obj, old=None)

    def update(self, rt: ResourceType, obj: Obj, *, namespace: str | None = None) -> Obj:
        obj = copy.deepcopy(obj)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        name = meta.get("name", "")
        ns = (namespace or meta.get("namespace") or "default") if rt.namespaced else ""
        current = self.get(rt, ns, name)
        sent_rv = meta.get("resourceVersion")
        if sent_rv and str(sent_rv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        cur_meta = current["metadata"]
        for kept in ("uid", "creationTimestamp", "generation"):
            if kept in cur_meta:
                meta[kept] = cur_meta[kept]
            else:
                meta.pop(kept, None)
        if rt.namespaced:
            meta["namespace"] = ns
        if "generation" in meta and obj.get("spec") != current.get("spec"):
            meta["generation"] = int(meta["generation"]) + 1
        return self.commit(event_type="MODIFIED", rt=rt, obj=obj, old=current)

    def patch(self, rt: ResourceType, namespace: str, name: str, patch: Obj) -> Obj:
        current = self.get(rt, namespace, name)
        if not isinstance(patch, dict):
            raise errors.bad_request("a merge patch must be a JSON object")
        patched = merge_patch(current, patch)
        patched_meta = patched.setdefault("metadata", {})
        patched_meta["name"] = name
        if "resourceVersion" not in (patch.get("metadata") or {}):
            patched_meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.update(rt, patched, namespace=namespace)

    def delete(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        current = self.get(rt, namespace, name)
        gone = copy.deepcopy(current)
        return self.commit(event_type="DELETED", rt=rt, obj=gone, old=current)
