"""Signals as the Watcher emits them, for orchestrator tests."""

from __future__ import annotations

from aetherius.signals import ObjectRef, Signal, dedup_key


def pod_signal(
    *,
    reason: str,
    pod: str = "api-7d9f8c6b5-x2k4q",
    namespace: str = "shop",
    rs: str | None = "api-7d9f8c6b5",
    cluster: str = "test",
    message: str = "",
    severity: str = "warning",
    occurrence: int = 1,
    container: str = "api",
    resolved: bool = False,
    source: str = "pod",
) -> Signal:
    owner = ObjectRef(kind="ReplicaSet", name=rs, namespace=namespace) if rs else None
    labels = {"pod-template-hash": rs.rsplit("-", 1)[1]} if rs and "-" in rs else {}
    return Signal(
        cluster_id=cluster,
        source=source,
        object=ObjectRef(kind="Pod", name=pod, namespace=namespace, uid=f"uid-{pod}"),
        reason=reason,
        message=message,
        severity=severity,
        dedup_key=dedup_key(cluster, source, namespace, pod, reason, container),
        occurrence=occurrence,
        owner=owner,
        container=container,
        resolved=resolved,
        labels=labels,
    )
