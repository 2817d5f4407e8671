from __future__ import annotations

import secrets

from aetherius.signals import ObjectRef, Signal, dedup_key
from aetherius.store import IncidentUpsert


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def make_signal(
    *,
    cluster: str,
    pod: str,
    reason: str = "OOMKilled",
    occurrence: int = 1,
    severity: str = "critical",
    namespace: str = "shop",
    owner: str = "api",
) -> Signal:
    return Signal(
        cluster_id=cluster,
        source="pod",
        object=ObjectRef(kind="Pod", name=pod, namespace=namespace),
        owner=ObjectRef(kind="Deployment", name=owner, namespace=namespace),
        reason=reason,
        message=f"container api {reason}",
        severity=severity,
        dedup_key=dedup_key(cluster, namespace, pod, reason),
        occurrence=occurrence,
        container="api",
    )


def upsert_for(
    signal: Signal, *, fingerprint: str, root_cause: str = "", summary: str = ""
) -> IncidentUpsert:
    owner = signal.owner
    return IncidentUpsert(
        cluster_id=signal.cluster_id,
        fingerprint=fingerprint,
        namespace=signal.object.namespace,
        object_kind=signal.object.kind,
        object_name=signal.object.name,
        owner_kind=owner.kind if owner else "",
        owner_name=owner.name if owner else "",
        reason=signal.reason,
        severity=signal.severity,
        root_cause=root_cause,
        summary=summary,
        affected=((signal.object.kind, signal.object.namespace, signal.object.name),),
        event_count=signal.count,
    )
