"""Signals as stored: one row per (dedup key, occurrence), the incident's timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aetherius.signals import Signal
from aetherius.store.base import StoreBase, to_record
from aetherius.store.models import SignalRow
from aetherius.store.records import RecordedSignal, SignalRecord


def signal_values(signal: Signal, *, received_at: datetime) -> dict[str, object]:
    owner = signal.owner
    return {
        "cluster_id": signal.cluster_id,
        "source": signal.source,
        "kind": signal.object.kind,
        "namespace": signal.object.namespace,
        "name": signal.object.name,
        "uid": signal.object.uid,
        "owner_kind": owner.kind if owner else "",
        "owner_name": owner.name if owner else "",
        "container": signal.container,
        "reason": signal.reason,
        "message": signal.message,
        "severity": signal.severity,
        "dedup_key": signal.dedup_key,
        "occurrence": signal.occurrence,
        "count": signal.count,
        "first_seen": signal.first_seen,
        "last_seen": signal.last_seen,
        "resolved": signal.resolved,
        "resource_version": signal.resource_version,
        "labels": dict(signal.labels),
        "received_at": received_at,
    }


class SignalOps(StoreBase):
    async def _insert_signal(
        self, session: AsyncSession, signal: Signal, *, received_at: datetime
    ) -> int | None:
        """Insert unless already stored; the new row id, or None for a duplicate."""
        statement = (
            self.insert(SignalRow.__table__)
            .values(**signal_values(signal, received_at=received_at))
            .on_conflict_do_nothing(index_elements=["dedup_key", "occurrence"])
            .returning(SignalRow.__table__.c.id)
        )
        return (await session.execute(statement)).scalar_one_or_none()

    @staticmethod
    async def _link_signal(session: AsyncSession, signal_id: int, incident_id: int) -> None:
        await session.execute(
            update(SignalRow).where(SignalRow.id == signal_id).values(incident_id=incident_id)
        )

    async def record_signal(self, signal: Signal, *, incident_id: int | None = None) -> RecordedSignal:
        """Store a Signal; storing the same (dedup key, occurrence) again is a reported no-op."""
        async with self.sessions.begin() as session:
            signal_id = await self._insert_signal(session, signal, received_at=self.clock())
            if signal_id is not None and incident_id is not None:
                await self._link_signal(session, signal_id, incident_id)
            return RecordedSignal(id=signal_id, duplicate=signal_id is None)

    async def incident_signals(self, incident_id: int, *, limit: int = 200) -> list[SignalRecord]:
        """The incident's timeline, oldest first (the last ``limit`` Signals)."""
        query = (
            select(SignalRow)
            .where(SignalRow.incident_id == incident_id)
            .order_by(SignalRow.received_at.desc(), SignalRow.id.desc())
            .limit(limit)
        )
        async with self.sessions() as session:
            rows = list((await session.execute(query)).scalars())
        return [to_record(SignalRecord, row) for row in reversed(rows)]

    async def count_signals(self, *, cluster_id: str | None = None) -> int:
        from sqlalchemy import func

        query = select(func.count()).select_from(SignalRow)
        if cluster_id is not None:
            query = query.where(SignalRow.cluster_id == cluster_id)
        async with self.sessions() as session:
            return int((await session.execute(query)).scalar_one())

    async def last_signal(self, cluster_id: str) -> SignalRecord | None:
        query = (
            select(SignalRow)
            .where(SignalRow.cluster_id == cluster_id)
            .order_by(SignalRow.received_at.desc(), SignalRow.id.desc())
            .limit(1)
        )
        async with self.sessions() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        return None if row is None else to_record(SignalRecord, row)
