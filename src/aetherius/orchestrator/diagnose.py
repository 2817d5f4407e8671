"""Diagnosing an incident live: the engine, through the Execution Gateway, audited per incident.

Each diagnosis gets its own gateway over the shared live backend, with an audit sink that
collects that diagnosis' reads; they are written to the store (``incident_id`` on every row)
before the report is handed back, so no report exists without the trail of reads behind it. The
engine reads the incident's workload and what it depends on (``diagnose_object``: a handful of
targeted reads, not the whole namespace); when the workload is gone, the newest object a Signal
named. The findings of the workload's group become the report.

The health re-check reads the workload through a gateway too: it is a read of the cluster like
any other, so it is redacted and audited the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from aetherius.diagnosis import diagnose, diagnose_object
from aetherius.diagnosis.chains import root_of, upstream_of
from aetherius.diagnosis.model import Finding
from aetherius.gateway import KINDS, BackendError, ExecutionGateway, MemoryAuditSink
from aetherius.gateway.audit import AuditRecord
from aetherius.gateway.readers import ClusterReaders, NoReader
from aetherius.logs import get_logger
from aetherius.orchestrator.grouping import IncidentKey, failure_class
from aetherius.orchestrator.model import Incident, IncidentRepository, ReportDraft, object_label
from aetherius.orchestrator.resolver import workload_healthy
from aetherius.reports.build import finding_rank
from aetherius.signals import SEVERITY_RANK, ObjectRef

log = get_logger(__name__)

# Kinds whose status the health re-check can read and judge.
_PROBED_KINDS = ("Pod", "Node", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job")


def audit_rows(
    records: Sequence[AuditRecord], *, scan_id: str, cluster_id: str = "", incident_id: int | None = None
) -> list[dict[str, Any]]:
    """The store's audit rows for gateway reads: one diagnosis, re-check, scan or lookup."""
    return [
        {
            "operation": r.operation,
            "resource": r.resource,
            "namespace": r.namespace,
            "name": r.name,
            "bytes": r.bytes,
            "outcome": r.outcome,
            "cluster_id": cluster_id,
            "incident_id": incident_id,
            "scan_id": scan_id,
            "at": r.time,
        }
        for r in records
    ]


def incident_audit(
    records: Sequence[AuditRecord], *, incident: Incident, scan_id: str
) -> list[dict[str, Any]]:
    return audit_rows(
        records,
        scan_id=scan_id,
        cluster_id=incident.cluster_id,
        incident_id=int(incident.id) if incident.id.isdigit() else None,
    )


def findings_for(incident: Incident, findings: Sequence[Finding]) -> list[Finding]:
    """The engine's findings about this incident's workload and objects, most severe first, and
    the findings their chains pass through (the root cause may be another workload's failure)."""
    workload = object_label(incident.workload)
    objects = {workload, *incident.objects}
    chosen = [f for f in findings if f.group == workload or f"{f.kind}/{f.namespace}/{f.name}" in objects]
    by_key = {f.key(): f for f in findings}
    keys = {f.key() for f in chosen}
    for finding in list(chosen):
        for upstream in upstream_of(finding, by_key):
            if upstream.key() not in keys:
                keys.add(upstream.key())
                chosen.append(upstream)
    return sorted(chosen, key=lambda f: -SEVERITY_RANK.get(f.severity, 0))


def lead_finding(chosen: Sequence[Finding]) -> Finding | None:
    """What a report leads with: the root of the strongest finding's chain (see ``finding_rank``).

    NB: "Deployment checkout has 0/1 replicas available" is the symptom; the OOM kill its chain
    ends at is what the title, the sentence and the runbook must say.
    """
    if not chosen:
        return None
    strongest = max(
        chosen,
        key=lambda f: finding_rank(
            reason=f.reason, root_cause=f.root_cause, severity=f.severity, evidence=len(f.evidence)
        ),
    )
    return root_of(strongest, {f.key(): f for f in chosen})


def upstream_fingerprint(incident: Incident, lead: Finding) -> str:
    """The fingerprint of the incident ``lead`` belongs to, when it is not this incident's workload."""
    workload = _workload_of(lead)
    if workload == incident.workload:
        return ""
    return IncidentKey(
        cluster_id=incident.cluster_id, workload=workload, failure_class=failure_class(lead.reason)
    ).fingerprint


def _workload_of(finding: Finding) -> ObjectRef:
    if finding.owner is not None:
        return ObjectRef(kind=finding.owner.kind, namespace=finding.namespace, name=finding.owner.name)
    return ObjectRef(kind=finding.kind, namespace=finding.namespace, name=finding.name)


class EngineDiagnoser:
    """``Diagnoser`` running ``aetherius.diagnosis`` live for the incident's workload.

    ``readers`` say which backend reads the incident's cluster. An incident of a cluster nobody
    here reads, or whose edge agent is not connected, is never diagnosed against another one:
    its report says why nothing was read (and the inconclusive retry tries it again later).
    """

    def __init__(self, readers: ClusterReaders, *, repository: IncidentRepository) -> None:
        self.readers = readers
        self.repository = repository

    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        if incident.reason == "WatchGap":
            return watch_gap(incident)
        problem = await self.readers.unavailable(incident.cluster_id)
        if problem is not None:
            return unreadable_cluster(incident, problem=problem)
        if incident.workload.kind not in KINDS:
            return alert_level(incident)
        sink = MemoryAuditSink()
        gateway = ExecutionGateway(self.readers.backend_for(incident.cluster_id), audit=sink)
        try:
            found: list[Finding] = []
            if incident.workload.kind == "Namespace":
                # NB: an alert about a namespace as a whole: what is failing in it is the answer.
                result = await diagnose(gateway, namespace=incident.workload.name, scan_id=diagnosis_id)
                found = sorted(result.findings, key=lambda f: -SEVERITY_RANK.get(f.severity, 0))[:20]
            for kind, namespace, name in _targets(incident) if not found else []:
                result = await diagnose_object(
                    gateway, kind=kind, namespace=namespace, name=name, scan_id=diagnosis_id
                )
                found = findings_for(incident, result.findings)
                if found:
                    break
        except NoReader as exc:
            # NB: the cluster went away mid-diagnosis (its agent cut off or wedged): the report
            # says so and the inconclusive retry comes back later; the Signal is not failed.
            return unreadable_cluster(incident, problem=str(exc))
        finally:
            # NB: the reads are kept even when the diagnosis failed half way: they happened.
            if sink.records:
                await self.repository.record_audit(
                    incident_audit(sink.records, incident=incident, scan_id=diagnosis_id)
                )
        return draft(incident, found)


def alert_level(incident: Incident) -> ReportDraft:
    """The report of an alert about nothing Aetherius can read (no pod, workload, node or
    namespace label): it says so, and how to make the next one diagnosable."""
    return ReportDraft(
        summary=f"Alert {incident.reason} names no pod, workload, node or namespace, so there is "
        "nothing in the cluster to read for it; its labels and annotations are in the timeline.",
        root_cause="Unknown",
        severity=incident.severity,
        findings=[],
        recommendations=[
            "Add a namespace label and a pod, deployment, statefulset, daemonset, job_name or node "
            "label to the alerting rule, so that Aetherius can read what the alert is about."
        ],
    )


def watch_gap(incident: Incident) -> ReportDraft:
    """The report of a ``WatchGap``: nothing to read, a window to distrust."""
    return ReportDraft(
        summary=f"Events of cluster {incident.cluster_id} may be missing: its watch of Events expired "
        "(410 Gone) while the watcher could not read, and Events are not kept for a relist to bring back. "
        "Incidents of that window (see the timeline for when) may lack the Events that explain them.",
        root_cause="Unknown",
        severity="warning",
        findings=[],
        recommendations=[
            "Check the incidents of that window against `kubectl get events -A --sort-by=.lastTimestamp` "
            "while the API server still has them (an hour by default).",
            "If the cut was the link to central, consider the leaf mode (`aetherius cluster add "
            "--leaf-domain`, docs/multi-cluster.md), which keeps Signals in the member cluster for days.",
        ],
    )


def unreadable_cluster(incident: Incident, *, problem: str) -> ReportDraft:
    """The report of an incident whose cluster cannot be read here now: no read at all."""
    return ReportDraft(
        summary=f"Inconclusive: {problem}; nothing was read for this incident.",
        root_cause="Unknown",
        severity=incident.severity,
        findings=[],
        recommendations=[
            f"Check that cluster {incident.cluster_id!r} is served here: its edge agent connected "
            "(`GET /api/v1/clusters`), or a kubeconfig for it in `clusters:`; alerts must carry the "
            "cluster id that is served. The incident is diagnosed again when it can be read."
        ],
    )


def _targets(incident: Incident) -> list[tuple[str, str, str]]:
    """The workload first; then the newest object a Signal named (the workload may be gone)."""
    w = incident.workload
    targets = [(w.kind, w.namespace, w.name)]
    for label in reversed(incident.objects):
        kind, _, rest = label.partition("/")
        namespace, _, name = rest.partition("/")
        if (kind, namespace, name) not in targets and kind in _PROBED_KINDS:
            targets.append((kind, namespace, name))
            break
    return targets


def draft(incident: Incident, chosen: list[Finding]) -> ReportDraft:
    """The report draft for an incident from its findings (the store adds timeline and knowledge)."""
    # NB: the contract's optional fields are absent, not null (``container`` of a pod-level finding).
    documents: list[dict[str, Any]] = [
        {k: v for k, v in msgspec.to_builtins(f).items() if v is not None} for f in chosen
    ]
    lead = lead_finding(chosen)
    if lead is None:
        w = incident.workload
        return ReportDraft(
            summary=f"{incident.reason} on {w.kind} {w.namespace}/{w.name}; "
            "the cluster's current state shows no failure for it.",
            root_cause="Unknown",
            severity=incident.severity,
            findings=[],
        )
    return ReportDraft(
        summary=lead.summary,
        root_cause=lead.root_cause,
        severity=max((f.severity for f in chosen), key=lambda s: SEVERITY_RANK.get(s, 0)),
        findings=documents,
        evidence=list(dict.fromkeys(line for f in chosen for line in f.evidence)),
        recommendations=list(dict.fromkeys(line for f in chosen for line in f.recommendations)),
        runbook=lead.runbook,
        reason=lead.reason,
        upstream_fingerprint=upstream_fingerprint(incident, lead),
    )


class GatewayHealthProbe:
    """``HealthProbe`` reading the workload's status through the gateway (one audited GET)."""

    def __init__(self, readers: ClusterReaders, *, repository: IncidentRepository) -> None:
        self.readers = readers
        self.repository = repository

    async def healthy(self, incident: Incident) -> bool | None:
        w = incident.workload
        if w.kind not in _PROBED_KINDS or await self.readers.unavailable(incident.cluster_id) is not None:
            return None
        sink = MemoryAuditSink()
        gateway = ExecutionGateway(self.readers.backend_for(incident.cluster_id), audit=sink)
        scan_id = f"recheck-{incident.id}"
        try:
            obj = await gateway.get_object(
                w.kind, requester=scan_id, namespace=w.namespace or None, name=w.name
            )
        except BackendError as exc:
            log.debug("health re-check could not read the workload", incident=incident.id, error=str(exc))
            return None
        finally:
            if sink.records:
                await self.repository.record_audit(
                    incident_audit(sink.records, incident=incident, scan_id=scan_id)
                )
        if obj is None:
            return True  # gone: nothing is failing any more
        return workload_healthy(w.kind, obj)
