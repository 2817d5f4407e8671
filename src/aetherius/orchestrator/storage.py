"""The orchestrator's repository over the SQL store (PostgreSQL or SQLite).

Each method is one of the store's transactions: ``record_failures`` stores Signals and opens,
updates or reopens their incidents together (and queues the notifications they owe, held until a
report carries them), ``add_report`` adds a version and releases held notifications.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aetherius.knowledge import KnowledgeRetriever, StoreRetriever
from aetherius.orchestrator.batching import WriteBatcher
from aetherius.orchestrator.grouping import IncidentKey
from aetherius.orchestrator.model import Incident, ReportDraft, SignalOutcome, findings_digest
from aetherius.reports import compose_report, evidence_hash, render_markdown
from aetherius.signals import ObjectRef, Signal
from aetherius.store import (
    AuditEntry,
    IncidentChange,
    IncidentFilters,
    IncidentUpsert,
    InvalidTransition,
    NotFound,
    Store,
)
from aetherius.store import Incident as StoredIncident

_OPEN_PAGE = 500


def _view(row: StoredIncident) -> Incident:
    workload = ObjectRef(
        kind=row.owner_kind or row.object_kind,
        namespace=row.namespace,
        name=row.owner_name or row.object_name,
    )
    return Incident(
        id=str(row.id),
        cluster_id=row.cluster_id,
        fingerprint=row.fingerprint,
        workload=workload,
        state="resolved" if row.state == "resolved" else "open",
        severity=row.severity,
        reason=row.reason,
        objects=[
            f"{o.get('kind', '')}/{o.get('namespace', '')}/{o.get('name', '')}" for o in row.affected_objects
        ],
        signal_count=row.signal_count,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        reopen_count=row.reopen_count,
        report_version=row.report_version,
        root_cause=row.root_cause if row.report_version else "",
    )


def _upsert(signal: Signal, key: IncidentKey, *, now: datetime) -> IncidentUpsert:
    w = key.workload
    obj = signal.object
    owned = (w.kind, w.name) != (obj.kind, obj.name)
    return IncidentUpsert(
        cluster_id=key.cluster_id,
        fingerprint=key.fingerprint,
        namespace=w.namespace,
        object_kind=obj.kind if owned else w.kind,
        object_name=obj.name if owned else w.name,
        owner_kind=w.kind if owned else "",
        owner_name=w.name if owned else "",
        reason=signal.reason,
        severity=signal.severity,
        # NB: no summary: the latest report's summary is the incident's, a Signal must not
        # overwrite it (the store's upsert applies any non-empty summary).
        summary="",
        affected=((obj.kind, obj.namespace, obj.name),),
        event_count=max(1, signal.count),
        seen_at=now,
    )


def _outcome(change: IncidentChange) -> SignalOutcome:
    incident = _view(change.incident) if change.incident is not None else None
    return SignalOutcome(incident=incident, duplicate=change.duplicate)


class StoreRepository:
    """``IncidentRepository`` over ``aetherius.store.Store``.

    Failure Signals are written through a ``WriteBatcher``: those recorded at the same moment
    (by the consumer's lanes) share one ``record_failures`` transaction.
    """

    def __init__(
        self,
        store: Store,
        *,
        retriever: KnowledgeRetriever | None = None,
        write_batch: int = 64,
        write_transactions: int = 2,
    ) -> None:
        self.store = store
        self.retriever: KnowledgeRetriever = retriever or StoreRetriever(store)
        self._writes: WriteBatcher[tuple[IncidentUpsert, Signal], IncidentChange] = WriteBatcher(
            store.record_failures, max_items=write_batch, max_transactions=write_transactions
        )

    async def record_signal(self, signal: Signal, *, key: IncidentKey, now: datetime) -> SignalOutcome:
        (outcome,) = await self.record_signals([(signal, key)], now=now)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def record_signals(
        self, items: Sequence[tuple[Signal, IncidentKey]], *, now: datetime
    ) -> list[SignalOutcome | Exception]:
        changes = await self._writes.submit([(_upsert(s, key, now=now), s) for s, key in items])
        return [c if isinstance(c, Exception) else _outcome(c) for c in changes]

    async def record_resolving(self, signal: Signal, *, key: IncidentKey, now: datetime) -> Incident | None:
        current = await self.store.find_open_incident(key.fingerprint)
        await self.store.record_signal(signal, incident_id=current.id if current else None)
        return _view(current) if current else None

    async def report_exists(self, incident_id: str, *, digest: str, since: datetime) -> bool:
        reports = await self.store.list_reports(int(incident_id))
        return any(r.evidence_hash == digest and r.created_at >= since for r in reports)

    async def save_report(self, *, incident_id: str, digest: str, report: ReportDraft, now: datetime) -> int:
        """Compose the full report (timeline, runbook, similar incidents) and store it.

        NB: the stored ``evidence_hash`` is the orchestrator's evidence digest (what the cooldown
        and redelivery checks compare); the findings' own hash is kept in the document.
        """
        composed = await compose_report(
            self.store, self.retriever, incident_id=int(incident_id), findings=report.findings
        )
        document = composed.document()
        document["diagnosis_id"] = report.diagnosis_id
        document["findings_hash"] = evidence_hash(composed.findings)
        if not report.findings:
            document["summary"] = report.summary
        saved = await self.store.add_report(
            int(incident_id),
            document=document,
            markdown=render_markdown(composed),
            root_cause=composed.root_cause,
            severity=composed.severity,
            summary=composed.summary if report.findings else report.summary,
            evidence_hash=digest,
            # NB: the severity stays the incident's: a report never lowers it (a Signal more severe
            # than the incident escalates it in the upsert, and lowering it would re-diagnose in a loop)
            reason=report.reason,
            upstream_fingerprint=report.upstream_fingerprint,
        )
        return saved.version

    async def latest_findings_digest(self, incident_id: str) -> str | None:
        try:
            latest = await self.store.latest_report(int(incident_id))
        except NotFound:
            return None
        if latest is None:
            return None
        document = latest.document
        return findings_digest(
            list(document.get("findings") or []), summary=str(document.get("summary") or "")
        )

    async def open_incidents(self, *, cluster_id: str | None = None) -> list[Incident]:
        found: list[Incident] = []
        cursor: str | None = None
        while True:
            page = await self.store.list_incidents(
                IncidentFilters(cluster_id=cluster_id, unresolved=True), cursor=cursor, limit=_OPEN_PAGE
            )
            found.extend(_view(i) for i in page.items)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def get_incident(self, incident_id: str) -> Incident | None:
        if not incident_id.isdigit():
            return None
        try:
            return _view(await self.store.get_incident(int(incident_id)))
        except NotFound:
            return None

    async def resolve(self, incident_id: str, *, now: datetime) -> bool:
        try:
            await self.store.resolve_incident(int(incident_id), by="aetherius", note="healthy again")
        except InvalidTransition:
            return False
        return True

    async def record_audit(self, rows: Sequence[dict[str, Any]]) -> None:
        await self.store.record_audit([AuditEntry(**row) for row in rows])


class StoreCooldownMarks:
    """The store's cooldown marks as ``CooldownMarks``: the fallback while Redis is down."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def claim(self, key: str, *, owner: str, ttl: float) -> bool:
        # NB: the store's marks have no owner; a redelivered Signal finds out whether its work
        # was done from the reports instead (see Orchestrator.handle).
        return await self.store.acquire_cooldown(key, ttl=ttl)

    async def release(self, key: str, *, owner: str) -> None:
        await self.store.clear_cooldown(key)
