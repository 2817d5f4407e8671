"""What the orchestrator knows about an incident, and what it asks of the store.

The orchestrator is stateless: every fact that must survive a replica dying (which Signals were
seen, which incident they belong to, which evidence was last diagnosed, which notice is owed)
lives in the store and changes in the store's transactions. ``IncidentRepository`` is the narrow
contract it needs; the store room provides the SQL implementation, the tests' ``MemoryRepository`` the
in-process one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from aetherius.orchestrator.grouping import IncidentKey
from aetherius.signals import ObjectRef, Signal, dedup_key

IncidentState = Literal["open", "resolved"]

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
    """The orchestrator's view of a stored incident (the store keeps more)."""

    id: str
    cluster_id: str
    fingerprint: str
    workload: ObjectRef
    state: IncidentState
    severity: str
    reason: str
    objects: list[str]  # "Kind/namespace/name" of every object a Signal named
    signal_count: int
    first_seen: datetime
    last_seen: datetime
    reopen_count: int = 0
    report_version: int = 0
    root_cause: str = ""  # of the latest report; "" before the first


def inconclusive(incident: Incident) -> bool:
    """Whether the incident's latest report found no root cause (often: it came too early)."""
    return incident.report_version >= 1 and incident.root_cause in ("", "Unknown")


def evidence_digest(incident: Incident, signal: Signal) -> str:
    """What was observed, in a key that changes only when the evidence does.

    A new reason (synonyms aside), a Signal of another severity or a new container is new
    evidence; the hundredth ``BackOff`` of the same container is not.

    NB: the Signal's severity, not the incident's: a report may raise the incident's severity
    (the diagnosis knew better), and that is not something new observed in the cluster.
    """
    return dedup_key(incident.fingerprint, canonical_reason(signal.reason), signal.severity, signal.container)


def findings_digest(findings: Sequence[dict[str, Any]], *, summary: str = "") -> str:
    """What a report concluded, in a key that changes only when its findings do.

    The same material as the reports' ``evidence_hash`` (object, reason, root cause, evidence
    lines), computed from the findings as stored, so a fresh draft compares with a stored report.
    A report without findings is its ``summary``: "agent not connected" and "shows no failure"
    are different conclusions, though both found nothing.
    """
    if not findings and summary:
        return hashlib.sha256(f"summary\x1f{summary}".encode()).hexdigest()
    material = sorted(
        (
            str(f.get("kind", "")),
            str(f.get("namespace", "")),
            str(f.get("name", "")),
            str(f.get("reason", "")),
            str(f.get("root_cause", "")),
            tuple(sorted(str(line) for line in f.get("evidence") or [])),
        )
        for f in findings
    )
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    incident: Incident | None  # None: a redelivered Signal whose incident has resolved since
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
    reason: str = ""  # the contract reason of the lead finding ("ImagePullBackOff"); "" when none
    # The fingerprint of the incident the root cause is in, when it is another workload's failure.
    upstream_fingerprint: str = ""


def utcnow() -> datetime:
    return datetime.now(UTC)


def object_label(ref: ObjectRef) -> str:
    return f"{ref.kind}/{ref.namespace}/{ref.name}"


class IncidentRepository(Protocol):
    """The store operations the orchestrator needs; each one is a single transaction."""

    async def record_signal(self, signal: Signal, *, key: IncidentKey, now: datetime) -> SignalOutcome:
        """Store the Signal (once per dedup key + occurrence) and open, update or reopen its incident.

        A redelivered Signal is reported as ``duplicate`` and changes nothing. A new, reopened or
        escalated incident owes a notification; it is held until the next report carries it.
        """

    async def record_signals(
        self, items: Sequence[tuple[Signal, IncidentKey]], *, now: datetime
    ) -> list[SignalOutcome | Exception]:
        """``record_signal`` for several failure Signals, applied in order; per Signal its
        outcome, or the error that kept it from being stored (the others are stored)."""

    async def record_resolving(self, signal: Signal, *, key: IncidentKey, now: datetime) -> Incident | None:
        """Store a resolving Signal (once) and return the open incident it names, if any."""

    async def report_exists(self, incident_id: str, *, digest: str, since: datetime) -> bool:
        """Whether a report for this evidence was committed since ``since``."""

    async def save_report(self, *, incident_id: str, digest: str, report: ReportDraft, now: datetime) -> int:
        """Add a report version (releasing held notifications); return the version."""

    async def latest_findings_digest(self, incident_id: str) -> str | None:
        """``findings_digest`` of the incident's latest report; None before the first."""

    async def open_incidents(self, *, cluster_id: str | None = None) -> list[Incident]: ...

    async def get_incident(self, incident_id: str) -> Incident | None:
        """The incident by id (open or resolved), None when there is none."""

    async def resolve(self, incident_id: str, *, now: datetime) -> bool:
        """Resolve an open incident; False when it was no longer open."""

    async def record_audit(self, rows: Sequence[dict[str, Any]]) -> None:
        """Keep Execution Gateway reads, each naming the incident it served."""
