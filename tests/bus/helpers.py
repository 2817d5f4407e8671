from __future__ import annotations

from aetherius.signals import ObjectRef, Signal, dedup_key


def make_signal(name: str, *, occurrence: int = 1, cluster: str = "c1", reason: str = "BackOff") -> Signal:
    return Signal(
        cluster_id=cluster,
        source="event",
        object=ObjectRef(kind="Pod", name=name, namespace="default"),
        reason=reason,
        message=f"{name} failed",
        severity="warning",
        dedup_key=dedup_key(cluster, name, reason),
        occurrence=occurrence,
        count=occurrence,
    )
