"""What the orchestrator knows about an incident, and what it asks of the store.

The orchestrator is stateless: every fact that must survive a replica dying (which Signals were
seen, which incident they belong to, which evidence was last diagnosed, which notice is owed)
lives in the store and changes in the store's transactions. ``IncidentRepository`` is the narrow
contract it needs; the store room provides the SQL implementation, ``MemoryRepository`` the
in-process one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from aetherius.orchestrator.grouping import IncidentKey
from aetherius.signals import SEVERITY_RANK, ObjectRef, Signal, dedup_key

IncidentState = Literal["open", "resolved"]
Notice = Literal["", "new", "reopened", "escalated"]

# Different words for the same observation; a synonym is not new evidence.
_REASON_SYNONYMS = {
    "BackOff": "CrashLoopBackOff",
    "Error": "CrashLoopBackOff",
    "ImagePullBackOff": "ErrImagePull",
    "Unschedulable": "FailedScheduling",
}


def canonical_reason(reason: str) -> str:
    return _REASON_SYNONYMS.get(reason, reason)


@dataclass(slots=True)
class Incident:
    id: str
    cluster_id: str
    fingerprint: str
    failure_class: str
    workload: ObjectRef
    state: IncidentState
    severity: str
    reasons: list[str]
    containers: list[str]
    objects: list[str]  # "Kind/namespace/name" of every object a Signal named
    signal_count: int
    first_seen: datetime
    last_seen: datetime
    title: str = ""
    healthy_since: datetime | None = None
    resolved_at: datetime | None = None
    reopen_count: int = 0
    diagnosed_digest: str = ""
    report_version: int = 0
    pending_notice: Notice = ""

    @property
    def evidence_digest(self) -> str:
        """Changes only when the evidence does: a new reason, a severity step up, a new container."""
        return dedup_key(
            self.failure_class,
            self.severity,
            ",".join(sorted({canonical_reason(r) for r in self.reasons})),
            ",".join(sorted(self.containers)),
        )


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    incident: Incident
    duplicate: bool  # this Signal (dedup key + occurrence) was already stored: a redelivery


@dataclass(slots=True)
class ReportDraft:
    """One diagnosis of an incident, as the store keeps it (a new version each time)."""

    summary: str
    root_cause: str
    severity: str
    findings: list[dict[str, Any]]
    evidence: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    runbook: str = ""
    similar: list[dict[str, Any]] = field(default_factory=list)
    diagnosis_id: str = ""


def object_label(ref: ObjectRef) -> str:
    return f"{ref.kind}/{ref.namespace}/{ref.name}"


def merge_signal(incident: Incident, signal: Signal, *, now: datetime) -> Notice:
    """Fold one Signal into an open incident; return the notice it causes (escalation or none)."""
    notice: Notice = ""
    if SEVERITY_RANK.get(signal.severity, 0) > SEVERITY_RANK.get(incident.severity, 0):
        incident.severity = signal.severity
        notice = "escalated"
    if signal.reason not in incident.reasons:
        incident.reasons.append(signal.reason)
    if signal.container and signal.container not in incident.containers:
        incident.containers.append(signal.container)
    label = object_label(signal.object)
    if label not in incident.objects:
        incident.objects.append(label)
    incident.signal_count += 1
    incident.last_seen = max(incident.last_seen, now)
    incident.healthy_since = None
    return notice


def new_incident(*, incident_id: str, key: IncidentKey, signal: Signal, now: datetime) -> Incident:
    w = key.workload
    return Incident(
        id=incident_id,
        cluster_id=key.cluster_id,
        fingerprint=key.fingerprint,
        failure_class=key.failure_class,
        workload=w,
        state="open",
        severity=signal.severity,
        reasons=[signal.reason],
        containers=[signal.container] if signal.container else [],
        objects=[object_label(signal.object)],
        signal_count=1,
        first_seen=now,
        last_seen=now,
        title=f"{w.kind} {w.namespace}/{w.name}: {signal.reason}" if w.namespace else f"{w.kind} {w.name}",
        pending_notice="new",
    )


class IncidentRepository(Protocol):
    """The store operations the orchestrator needs; each one is a single transaction."""

    async def record_signal(self, signal: Signal, *, key: IncidentKey, now: datetime) -> SignalOutcome:
        """Store the Signal (once per dedup key + occurrence) and open, update or reopen its incident.

        A redelivered Signal is reported as ``duplicate`` and changes nothing. A new incident gets
        notice ``new``, a recurrence of a resolved one ``reopened`` (and its diagnosed evidence is
        forgotten), a severity step ``escalated``; the notice waits on the incident until a report
        carries it.
        """

    async def record_resolving(self, signal: Signal, *, key: IncidentKey, now: datetime) -> Incident | None:
        """Store a resolving Signal (once) and start the healthy clock of the open incident it names."""

    async def save_report(
        self, *, incident_id: str, digest: str, report: ReportDraft, now: datetime
    ) -> tuple[int, Notice]:
        """Add a report version, remember the diagnosed evidence, and enqueue the pending notice.

        Returns the new version and the notice sent with it.
        """

    async def get_incident(self, incident_id: str) -> Incident | None: ...

    async def open_incidents(self, *, cluster_id: str | None = None) -> list[Incident]: ...

    async def set_healthy_since(self, incident_id: str, *, since: datetime | None) -> None: ...

    async def resolve(self, incident_id: str, *, now: datetime) -> bool:
        """Resolve an open incident; False when it was no longer open."""

    async def record_audit(self, rows: Sequence[dict[str, Any]]) -> None:
        """Keep Execution Gateway reads, each naming the incident it served."""
