"""One incident's whole story (incident, report versions, Signals, audit) in one read.

The incident page needs four queries; run as four store calls they cost four connection
checkouts and transactions. Here they share one connection and one transaction (so the page is
a consistent snapshot), as Core selects of exactly the records' columns.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from sqlalchemy import Table, select

from aetherius.store.base import StoreBase
from aetherius.store.engine import NotFound
from aetherius.store.models import AuditRow, IncidentRow, ReportRow, SignalRow
from aetherius.store.records import AuditRecord, Incident, IncidentStory, Report, SignalRecord

R = TypeVar("R")


class _Columns:
    """The columns of ``table`` that make a record ``cls``, and the record from a row of them."""

    def __init__(self, cls: type[Any], table: Table) -> None:
        self.cls = cls
        self.names = tuple(f.name for f in dataclasses.fields(cls) if f.name in table.c)
        self.columns = tuple(table.c[name] for name in self.names)

    def record(self, row: Any) -> Any:
        return self.cls(**dict(zip(self.names, row, strict=True)))


_INCIDENT = _Columns(Incident, IncidentRow.__table__)  # type: ignore[arg-type]
_REPORT = _Columns(Report, ReportRow.__table__)  # type: ignore[arg-type]
_SIGNAL = _Columns(SignalRecord, SignalRow.__table__)  # type: ignore[arg-type]
_AUDIT = _Columns(AuditRecord, AuditRow.__table__)  # type: ignore[arg-type]


class StoryOps(StoreBase):
    async def incident_story(
        self, incident_id: int, *, signals_limit: int = 200, audit_limit: int = 500
    ) -> IncidentStory:
        """The incident, its reports (newest first), its last Signals (oldest first), its audit."""
        incident_q = select(*_INCIDENT.columns).where(IncidentRow.id == incident_id)
        reports_q = (
            select(*_REPORT.columns)
            .where(ReportRow.incident_id == incident_id)
            .order_by(ReportRow.version.desc())
        )
        signals_q = (
            select(*_SIGNAL.columns)
            .where(SignalRow.incident_id == incident_id)
            .order_by(SignalRow.received_at.desc(), SignalRow.id.desc())
            .limit(signals_limit)
        )
        audit_q = (
            select(*_AUDIT.columns)
            .where(AuditRow.incident_id == incident_id)
            .order_by(AuditRow.at, AuditRow.id)
            .limit(audit_limit)
        )
        async with self.engine.connect() as connection:
            incident = (await connection.execute(incident_q)).first()
            if incident is None:
                raise NotFound(f"incident {incident_id} does not exist")
            reports = (await connection.execute(reports_q)).all()
            signals = (await connection.execute(signals_q)).all()
            audit = (await connection.execute(audit_q)).all()
        return IncidentStory(
            incident=_INCIDENT.record(incident),
            reports=[_REPORT.record(r) for r in reports],
            signals=[_SIGNAL.record(s) for s in reversed(signals)],
            audit=[_AUDIT.record(a) for a in audit],
        )
