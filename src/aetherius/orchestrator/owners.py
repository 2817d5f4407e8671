"""Naming the workload of a Signal that arrived without one.

A kubelet Event about a pod carries only the pod (``involvedObject``); the Watcher adds the pod's
owner when it has seen the pod, but an Event read before its pod (the first LIST of a start, a
pod already gone from its memory) comes ownerless, and would open an incident of its own beside
the workload's. So before grouping, an ownerless pod Signal gets its owner from the pod itself:
one audited GET through the gateway, remembered per pod (owners do not change).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

import msgspec

from aetherius.gateway import BackendError, ExecutionGateway, MemoryAuditSink
from aetherius.gateway.readers import ClusterReaders
from aetherius.logs import get_logger
from aetherius.orchestrator.diagnose import audit_rows
from aetherius.orchestrator.model import IncidentRepository
from aetherius.signals import ObjectRef, Signal

log = get_logger(__name__)

_REMEMBERED = 50_000


class SignalEnricher(Protocol):
    async def complete(self, signal: Signal) -> Signal:
        """The Signal with whatever grouping needs filled in (never raises for a read failure)."""


def _controller(pod: dict[str, Any]) -> tuple[ObjectRef | None, dict[str, str]]:
    metadata = pod.get("metadata") or {}
    refs = [r for r in metadata.get("ownerReferences") or [] if isinstance(r, dict)]
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    labels = {k: str(v) for k, v in (metadata.get("labels") or {}).items() if k == "pod-template-hash"}
    if ref is None:
        return None, labels
    owner = ObjectRef(
        kind=str(ref.get("kind") or ""),
        name=str(ref.get("name") or ""),
        namespace=str(metadata.get("namespace") or ""),
        uid=str(ref.get("uid") or ""),
    )
    return owner, labels


class PodOwnerLookup:
    """``SignalEnricher`` reading an ownerless pod's controller through the gateway."""

    def __init__(self, readers: ClusterReaders, *, repository: IncidentRepository) -> None:
        self.readers = readers
        self.repository = repository
        self._known: OrderedDict[tuple[str, str, str], tuple[ObjectRef | None, dict[str, str]]] = (
            OrderedDict()
        )

    async def complete(self, signal: Signal) -> Signal:
        obj = signal.object
        if signal.owner is not None or obj.kind != "Pod" or not obj.namespace:
            return signal
        key = (signal.cluster_id, obj.namespace, obj.uid or obj.name)
        found = self._known.get(key)
        if found is None:
            looked_up = await self._lookup(signal)
            if looked_up is None:
                return signal
            found = looked_up
            self._known[key] = found
            if len(self._known) > _REMEMBERED:
                self._known.popitem(last=False)
        owner, labels = found
        if owner is None:
            return signal
        return msgspec.structs.replace(signal, owner=owner, labels={**labels, **signal.labels})

    async def _lookup(self, signal: Signal) -> tuple[ObjectRef | None, dict[str, str]] | None:
        obj = signal.object
        sink = MemoryAuditSink()
        try:
            gateway = ExecutionGateway(self.readers.backend_for(signal.cluster_id), audit=sink)
            pod = await gateway.get_object(
                "Pod", requester="owner-lookup", namespace=obj.namespace, name=obj.name
            )
        except BackendError as exc:
            log.debug(
                "pod owner not read; grouped by the pod", pod=f"{obj.namespace}/{obj.name}", error=str(exc)
            )
            return None
        finally:
            rows = audit_rows(sink.records, scan_id="owner-lookup", cluster_id=signal.cluster_id)
            await self.repository.record_audit(rows)
        if pod is None:
            return (None, {})
        if obj.uid and str((pod.get("metadata") or {}).get("uid") or "") not in ("", obj.uid):
            return (None, {})  # a new pod of the same name: not the one the Signal is about
        return _controller(pod)
