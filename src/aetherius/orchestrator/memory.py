"""The in-process incident repository: same contract as the SQL store, kept in memory.

It serves unit tests of the orchestrator's decisions and ``aetherius run --database-url memory://``
where nothing needs to outlive the process. Each method runs without awaiting, so on one event loop
it is as atomic as a database transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aetherius.orchestrator.grouping import IncidentKey
from aetherius.orchestrator.model import (
    Incident,
    Notice,
    ReportDraft,
    SignalOutcome,
    merge_signal,
    new_incident,
)
from aetherius.signals import Signal


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
    notice: Notice
    report_version: int


class MemoryRepository:
    def __init__(self) -> None:
        self.signals: dict[str, str] = {}  # msg_id -> incident id
        self.incidents: dict[str, Incident] = {}
        self.open_by_fingerprint: dict[str, str] = {}
        self.last_by_fingerprint: dict[str, str] = {}
        self.reports: list[StoredReport] = []
        self.notices: list[StoredNotice] = []
        self.audit: list[dict[str, Any]] = []

    async def record_signal(self, signal: Signal, *, key: IncidentKey, now: datetime) -> SignalOutcome:
        known = self.signals.get(signal.msg_id)
        if known is not None:
            return SignalOutcome(incident=replace(self.incidents[known]), duplicate=True)
        fingerprint = key.fingerprint
        open_id = self.open_by_fingerprint.get(fingerprint)
        if open_id is not None:
            incident = self.incidents[open_id]
            notice = merge_signal(incident, signal, now=now)
            if notice and not incident.pending_notice:
                incident.pending_notice = notice
        elif (last_id := self.last_by_fingerprint.get(fingerprint)) is not None:
            incident = self.incidents[last_id]
            incident.state = "open"
            incident.resolved_at = None
            incident.reopen_count += 1
            incident.diagnosed_digest = ""
            merge_signal(incident, signal, now=now)
            incident.pending_notice = "reopened"
            self.open_by_fingerprint[fingerprint] = incident.id
        else:
            incident = new_incident(incident_id=str(uuid.uuid4()), key=key, signal=signal, now=now)
            self.incidents[incident.id] = incident
            self.open_by_fingerprint[fingerprint] = incident.id
            self.last_by_fingerprint[fingerprint] = incident.id
        self.signals[signal.msg_id] = incident.id
        return SignalOutcome(incident=replace(incident), duplicate=False)

    async def record_resolving(self, signal: Signal, *, key: IncidentKey, now: datetime) -> Incident | None:
        open_id = self.open_by_fingerprint.get(key.fingerprint)
        duplicate = signal.msg_id in self.signals
        self.signals.setdefault(signal.msg_id, open_id or "")
        if open_id is None:
            return None
        incident = self.incidents[open_id]
        if not duplicate and incident.healthy_since is None:
            incident.healthy_since = now
        return replace(incident)

    async def save_report(
        self, *, incident_id: str, digest: str, report: ReportDraft, now: datetime
    ) -> tuple[int, Notice]:
        incident = self.incidents[incident_id]
        incident.report_version += 1
        incident.diagnosed_digest = digest
        self.reports.append(
            StoredReport(
                incident_id=incident_id,
                version=incident.report_version,
                digest=digest,
                report=report,
                created_at=now,
            )
        )
        notice = incident.pending_notice
        if notice:
            self.notices.append(
                StoredNotice(incident_id=incident_id, notice=notice, report_version=incident.report_version)
            )
            incident.pending_notice = ""
        return incident.report_version, notice

    async def get_incident(self, incident_id: str) -> Incident | None:
        incident = self.incidents.get(incident_id)
        return replace(incident) if incident is not None else None

    async def open_incidents(self, *, cluster_id: str | None = None) -> list[Incident]:
        return [
            replace(self.incidents[i])
            for i in self.open_by_fingerprint.values()
            if cluster_id is None or self.incidents[i].cluster_id == cluster_id
        ]

    async def set_healthy_since(self, incident_id: str, *, since: datetime | None) -> None:
        incident = self.incidents[incident_id]
        if incident.state == "open":
            incident.healthy_since = since

    async def resolve(self, incident_id: str, *, now: datetime) -> bool:
        incident = self.incidents[incident_id]
        if incident.state != "open":
            return False
        incident.state = "resolved"
        incident.resolved_at = now
        incident.healthy_since = None
        self.open_by_fingerprint.pop(incident.fingerprint, None)
        return True

    async def record_audit(self, rows: Sequence[dict[str, Any]]) -> None:
        self.audit.extend(dict(r) for r in rows)
