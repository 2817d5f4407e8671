"""The audit log: every Execution Gateway read, linked to the incident, report or scan it served."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select

from aetherius.store.base import StoreBase, to_record
from aetherius.store.models import AuditRow
from aetherius.store.records import AuditEntry, AuditRecord


class AuditOps(StoreBase):
    async def record_audit(self, entries: Sequence[AuditEntry]) -> int:
        """Write a batch of reads in one statement (the gateway buffers and flushes them)."""
        if not entries:
            return 0
        now = self.clock()
        values = [
            {
                "at": entry.at or now,
                "cluster_id": entry.cluster_id,
                "operation": entry.operation,
                "resource": entry.resource,
                "namespace": entry.namespace,
                "name": entry.name,
                "bytes": entry.bytes,
                "outcome": entry.outcome,
                "incident_id": entry.incident_id,
                "report_id": entry.report_id,
                "scan_id": entry.scan_id,
            }
            for entry in entries
        ]
        async with self.sessions.begin() as session:
            await session.execute(insert(AuditRow), values)
        return len(values)

    async def list_audit(
        self,
        *,
        incident_id: int | None = None,
        report_id: int | None = None,
        scan_id: str | None = None,
        limit: int = 500,
    ) -> list[AuditRecord]:
        """Reads in the order they happened."""
        query = select(AuditRow).order_by(AuditRow.at, AuditRow.id).limit(limit)
        if incident_id is not None:
            query = query.where(AuditRow.incident_id == incident_id)
        if report_id is not None:
            query = query.where(AuditRow.report_id == report_id)
        if scan_id is not None:
            query = query.where(AuditRow.scan_id == scan_id)
        async with self.sessions() as session:
            return [to_record(AuditRecord, row) for row in (await session.execute(query)).scalars()]
