"""``diagnose_object``: one object and what it depends on, read with a handful of targeted calls.

The orchestrator diagnoses one incident at a time; listing the whole cluster for it would be
wasteful. For a pod: the pod, its events, its owner chain, its node, the claims and config it
mounts, the StorageClasses. For a workload: it, its ReplicaSets and pods (by its selector), their
events (one namespace LIST). The same analyzers then run over that small state.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aetherius.diagnosis.context import Context
from aetherius.diagnosis.engine import analyze_state, new_scan_id, order
from aetherius.diagnosis.index import Index, group_of
from aetherius.diagnosis.logplan import read_logs
from aetherius.diagnosis.model import DiagnosisResult
from aetherius.gateway import BackendError, ExecutionGateway

__all__ = ["diagnose_object"]

Obj = dict[str, Any]
_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")


async def _pod_state(gateway: ExecutionGateway, pod: Obj, *, requester: str) -> dict[str, list[Obj]]:
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name"))
    state: dict[str, list[Obj]] = {"Pod": [pod]}
    state["Event"] = await gateway.events_for(requester=requester, kind="Pod", namespace=namespace, name=name)
    refs = [r for r in metadata.get("ownerReferences") or [] if isinstance(r, dict) and r.get("controller")]
    for ref in refs:
        kind, owner_name = str(ref.get("kind")), str(ref.get("name"))
        owner = (
            await gateway.get_object(kind, requester=requester, namespace=namespace, name=owner_name)
            if kind in _WORKLOADS
            else None
        )
        if owner is not None:
            state.setdefault(kind, []).append(owner)
            for up in (owner.get("metadata") or {}).get("ownerReferences") or []:
                if (
                    isinstance(up, dict)
                    and up.get("controller")
                    and up.get("kind") in ("Deployment", "CronJob")
                ):
                    top = await gateway.get_object(
                        str(up["kind"]), requester=requester, namespace=namespace, name=str(up.get("name"))
                    )
                    if top is not None:
                        state.setdefault(str(up["kind"]), []).append(top)
    node_name = spec.get("nodeName")
    if isinstance(node_name, str):
        node = await gateway.node_state(requester=requester, name=node_name)
        state["Node"] = [node] if node is not None else []
    claims = [
        v["persistentVolumeClaim"].get("claimName")
        for v in spec.get("volumes") or []
        if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)
    ]
    for claim in claims:
        obj = await gateway.get_object(
            "PersistentVolumeClaim", requester=requester, namespace=namespace, name=str(claim)
        )
        if obj is not None:
            state.setdefault("PersistentVolumeClaim", []).append(obj)
    if claims:
        state["StorageClass"] = await gateway.list_objects("StorageClass", requester=requester)
    return state


async def diagnose_object(
    gateway: ExecutionGateway,
    *,
    kind: str,
    namespace: str,
    name: str,
    scan_id: str | None = None,
    now: datetime | None = None,
) -> DiagnosisResult:
    """Findings about one object and its owner/related objects (its group)."""
    requester = scan_id or new_scan_id()
    warnings: list[str] = []
    obj = await gateway.get_object(kind, requester=requester, namespace=namespace or None, name=name)
    if obj is None:
        warnings.append(f"{kind} {namespace}/{name} does not exist")
        state: dict[str, list[Obj]] = {}
    elif kind == "Pod":
        state = await _pod_state(gateway, obj, requester=requester)
    else:
        kinds = [
            "Pod",
            "Event",
            "ReplicaSet",
            "Service",
            "Endpoints",
            "PersistentVolumeClaim",
            "ConfigMap",
            kind,
        ]

        async def one(k: str) -> tuple[str, list[Obj]]:
            try:
                return k, await gateway.list_objects(k, requester=requester, namespace=namespace or None)
            except BackendError as exc:
                warnings.append(f"{k} not read: {exc}")
                return k, []

        state = dict(await asyncio.gather(*(one(k) for k in dict.fromkeys(kinds))))
        state["StorageClass"] = await gateway.list_objects("StorageClass", requester=requester)
    index = Index.build(state)
    if now is None:
        now = (
            datetime.now(UTC)
            if gateway.source == "live"
            else datetime.fromisoformat(index.newest)
            if index.newest
            else datetime.now(UTC)
        )
    ctx = Context(index=index, now=now, warnings=warnings + index.warnings)
    await read_logs(gateway, ctx, requester=requester)
    findings, ctx = analyze_state(state, ctx)
    target_group = None
    if obj is not None:
        owner, _ = index.owner_of(obj) if kind != "Node" else (None, "")
        target_group = (
            group_of(owner, kind, namespace, name) if kind == "Pod" else f"{kind}/{namespace}/{name}"
        )
    related = [
        f
        for f in findings
        if f.group == target_group or (f.kind, f.namespace, f.name) == (kind, namespace, name)
    ]
    return DiagnosisResult(
        cluster=gateway.cluster,
        source=gateway.source,
        findings=order(related),
        warnings=ctx.warnings,
        scan_id=requester,
        reference_time=now.isoformat().replace("+00:00", "Z"),
    )
