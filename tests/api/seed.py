"""Incidents, reports and audit rows written through the store's own API (as the orchestrator will)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from aetherius.signals import ObjectRef, Signal, dedup_key
from aetherius.store import AuditEntry, Incident, IncidentUpsert, Store


def unique_cluster() -> str:
    return f"c-{secrets.token_hex(4)}"


async def seed_incident(
    store: Store,
    *,
    cluster: str,
    namespace: str = "shop",
    name: str = "api",
    reason: str = "CrashLoopBackOff",
    root_cause: str = "OutOfMemory",
    severity: str = "critical",
    summary: str = "Container api is killed for exceeding its 256Mi memory limit.",
    seen_at: datetime | None = None,
    with_report: bool = True,
) -> Incident:
    seen = seen_at or datetime.now(UTC)
    pod = f"{name}-7d9f8-{secrets.token_hex(2)}"
    signal = Signal(
        cluster_id=cluster,
        source="pod",
        object=ObjectRef(kind="Pod", name=pod, namespace=namespace),
        owner=ObjectRef(kind="Deployment", name=name, namespace=namespace),
        reason=reason,
        message=f"Back-off restarting failed container {name}",
        severity=severity,
        dedup_key=dedup_key(cluster, namespace, pod, reason),
        first_seen=seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
        last_seen=seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    change = await store.upsert_incident(
        IncidentUpsert(
            cluster_id=cluster,
            fingerprint=dedup_key(cluster, namespace, "Deployment", name, reason),
            namespace=namespace,
            object_kind="Pod",
            object_name=pod,
            owner_kind="Deployment",
            owner_name=name,
            reason=reason,
            severity=severity,
            root_cause=root_cause,
            summary=summary,
            affected=(("Pod", namespace, pod),),
            seen_at=seen,
        ),
        signal=signal,
    )
    assert change.incident is not None
    incident = change.incident
    if with_report:
        report = await store.add_report(
            incident.id,
            document={
                "summary": summary,
                "root_cause": root_cause,
                "severity": severity,
                "evidence": ["lastState.terminated.reason=OOMKilled exitCode=137", "limits.memory=256Mi"],
                "recommendations": ["Raise resources.limits.memory above the working set."],
                "runbook": "oom-killed",
                "similar_incidents": [],
            },
            markdown=f"# {reason}\n\n{summary}\n",
            root_cause=root_cause,
            severity=severity,
            summary=summary,
            evidence_hash=secrets.token_hex(8),
        )
        await store.record_audit(
            [
                AuditEntry(
                    operation="get",
                    resource="pods",
                    namespace=namespace,
                    name=pod,
                    bytes=2048,
                    cluster_id=cluster,
                    incident_id=incident.id,
                    report_id=report.id,
                ),
                AuditEntry(
                    operation="logs",
                    resource="pods/log",
                    namespace=namespace,
                    name=pod,
                    bytes=9000,
                    cluster_id=cluster,
                    incident_id=incident.id,
                    report_id=report.id,
                ),
            ]
        )
        incident = await store.get_incident(incident.id)
    return incident


async def seed_many(store: Store, *, cluster: str, count: int) -> list[Incident]:
    start = datetime.now(UTC) - timedelta(hours=count)
    out = []
    for n in range(count):
        out.append(
            await seed_incident(
                store,
                cluster=cluster,
                name=f"svc{n}",
                namespace="shop" if n % 2 else "data",
                severity=("critical", "warning", "info")[n % 3],
                seen_at=start + timedelta(hours=n),
                with_report=False,
            )
        )
    return out
