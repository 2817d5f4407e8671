"""The in-process incident repository: the same contract as the SQL store, kept in memory.

It serves the orchestrator's decision tests and ``--database-url memory://`` where nothing needs to
outlive the process. No method awaits, so on one event loop each is as atomic as a transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aetherius.orchestrator.grouping import IncidentKey
from aetherius.orchestrator.model import (
    Incident,
    ReportDraft,
    SignalOutcome,
    findings_digest,
    object_label,
)
from aetherius.signals import SEVERITY_RANK, Signal


@dataclass(frozen=True, slots=True)
class StoredReport:
    incident_id: str
    version: int
    digest: str
    report: ReportDraft
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredNotice:
    incident_id: str
    notice: str  # new | reopened | escalated
    report_version: int = 0  # 0 while held until a report carries it


class MemoryRepository:
    def __init__(self) -> None:
        self.signals: dict[str, str] = {}  # msg_id -> incident id ("" for an unmatched resolving one)
        self.incidents: dict[str, Incident] = {}
        self.open_by_fingerprint: dict[str, str] = {}
        self.last_by_fingerprint: dict[str, str] = {}
        self.reports: list[StoredReport] = []
        self.notices: list[StoredNotice] = []
        self.audit: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def _open(self, fingerprint: str) -> Incident | None:
        found = self.open_by_fingerprint.get(fingerprint)
        return self.incidents[found] if found is not None else None

    async def record_signals(
        self, items: Sequence[tuple[Signal, IncidentKey]], *, now: datetime
    ) -> list[SignalOutcome | Exception]:
        return [await self.record_signal(signal, key=key, now=now) for signal, key in items]

    async def record_signal(self, signal: Signal, *, key: IncidentKey, now: datetime) -> SignalOutcome:
        if signal.msg_id in self.signals:
            current = self._open(key.fingerprint)
            return SignalOutcome(incident=replace(current) if current else None, duplicate=True)
        incident = self._open(key.fingerprint)
        notice = ""
        if incident is None and (last := self.last_by_fingerprint.get(key.fingerprint)) is not None:
            incident = self.incidents[last]
            incident.state = "open"
            incident.reopen_count += 1
            incident.severity = signal.severity
            self.open_by_fingerprint[key.fingerprint] = incident.id
            notice = "reopened"
        elif incident is None:
            w = key.workload
            incident = Incident(
                id=str(next(self._ids)),
                cluster_id=key.cluster_id,
                fingerprint=key.fingerprint,
                workload=w,
                state="open",
                severity=signal.severity,
                reason=signal.reason,
                objects=[],
                signal_count=0,
                first_seen=now,
                last_seen=now,
            )
            self.incidents[incident.id] = incident
            self.open_by_fingerprint[key.fingerprint] = incident.id
            self.last_by_fingerprint[key.fingerprint] = incident.id
            notice = "new"
        elif SEVERITY_RANK.get(signal.severity, 0) > SEVERITY_RANK.get(incident.severity, 0):
            incident.severity = signal.severity
            notice = "escalated"
        label = object_label(signal.object)
        if label not in incident.objects:
            incident.objects.append(label)
        incident.signal_count += 1
        incident.last_seen = max(incident.last_seen, now)
        if notice:
            self.notices.append(StoredNotice(incident_id=incident.id, notice=notice))
        self.signals[signal.msg_id] = incident.id
        return SignalOutcome(incident=replace(incident, objects=list(incident.objects)), duplicate=False)

    async def record_resolving(self, signal: Signal, *, key: IncidentKey, now: datetime) -> Incident | None:
        incident = self._open(key.fingerprint)
        self.signals.setdefault(signal.msg_id, incident.id if incident else "")
        return replace(incident) if incident is not None else None

    async def report_exists(self, incident_id: str, *, digest: str, since: datetime) -> bool:
        return any(
            r.incident_id == incident_id and r.digest == digest and r.created_at >= since
            for r in self.reports
        )

    async def save_report(self, *, incident_id: str, digest: str, report: ReportDraft, now: datetime) -> int:
        incident = self.incidents[incident_id]
        incident.report_version += 1
        incident.root_cause = report.root_cause
        incident.reason = report.reason or incident.reason
        self.reports.append(
            StoredReport(
                incident_id=incident_id,
                version=incident.report_version,
                digest=digest,
                report=report,
                created_at=now,
            )
        )
        self.notices = [
            replace(n, report_version=incident.report_version)
            if n.incident_id == incident_id and not n.report_version
            else n
            for n in self.notices
        ]
        return incident.report_version

    async def latest_findings_digest(self, incident_id: str) -> str | None:
        mine = [r for r in self.reports if r.incident_id == incident_id]
        if not mine:
            return None
        latest = max(mine, key=lambda r: r.version).report
        return findings_digest(latest.findings, summary=latest.summary)

    async def open_incidents(self, *, cluster_id: str | None = None) -> list[Incident]:
        return [
            replace(self.incidents[i])
            for i in self.open_by_fingerprint.values()
            if cluster_id is None or self.incidents[i].cluster_id == cluster_id
        ]

    async def get_incident(self, incident_id: str) -> Incident | None:
        found = self.incidents.get(incident_id)
        return replace(found) if found is not None else None

    async def resolve(self, incident_id: str, *, now: datetime) -> bool:
        incident = self.incidents[incident_id]
        if incident.state != "open":
            return False
        incident.state = "resolved"
        self.open_by_fingerprint.pop(incident.fingerprint, None)
        return True

    async def record_audit(self, rows: Sequence[dict[str, Any]]) -> None:
        self.audit.extend(dict(r) for r in rows)
