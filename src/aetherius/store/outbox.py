"""The notification outbox: deliveries written with the incident change, sent later.

A delivery row is inserted in the same transaction that creates, reopens or escalates an incident,
so a notification exists exactly when the change does, once per change and never per Signal. The
dispatcher (``aetherius.reports.dispatcher``) claims due rows with a lease: a dispatcher that dies
mid-send leaves the row to come due again, so a sink that is down delays a notice, never loses it.

A new notice is held up to ``wait_for_report`` seconds so it can carry the diagnosis; storing the
incident's report releases it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aetherius.signals import SEVERITY_RANK
from aetherius.store.base import StoreBase, to_record
from aetherius.store.models import DeliveryRow, IncidentRow
from aetherius.store.records import Delivery, Incident, NotificationEvent


class OutboxOps(StoreBase):
    async def _enqueue_notifications(
        self,
        session: AsyncSession,
        incident: IncidentRow | Incident,
        events: Sequence[NotificationEvent],
        *,
        now: datetime,
    ) -> list[NotificationEvent]:
        due = now + timedelta(seconds=self.wait_for_report)
        for event in events:
            for sink in self.sinks:
                if event not in sink.events:
                    continue
                if SEVERITY_RANK.get(incident.severity, 0) < SEVERITY_RANK[sink.min_severity]:
                    continue
                session.add(
                    DeliveryRow(
                        sink=sink.name,
                        incident_id=incident.id,
                        event=event,
                        status="pending",
                        attempts=0,
                        created_at=now,
                        next_attempt_at=due,
                        last_error="",
                    )
                )
        return list(events)

    async def _release_deliveries(self, session: AsyncSession, incident_id: int, *, now: datetime) -> None:
        """The report is in: send this incident's held notices now."""
        await session.execute(
            update(DeliveryRow)
            .where(
                DeliveryRow.incident_id == incident_id,
                DeliveryRow.status == "pending",
                DeliveryRow.attempts == 0,
                DeliveryRow.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )

    async def _fold_deliveries(self, session: AsyncSession, incident_id: int, *, into: int) -> None:
        """This incident follows from incident ``into``: its notices not yet sent are not sent
        (the root's notice lists it), and each says why."""
        await session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.incident_id == incident_id, DeliveryRow.status == "pending")
            .values(status="folded", last_error=f"folded into incident #{into} (its root cause)")
        )

    async def claim_deliveries(self, *, limit: int = 20, lease: float = 60.0) -> list[Delivery]:
        """Take up to ``limit`` due deliveries for ``lease`` seconds (skipping those others hold).

        The attempt is counted when claimed, so a crash mid-send still counts as an attempt.
        """
        now = self.clock()
        async with self.sessions.begin() as session:
            query = (
                select(DeliveryRow)
                .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now)
                .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = list((await session.execute(query)).scalars())
            for row in rows:
                row.attempts += 1
                row.next_attempt_at = now + timedelta(seconds=lease)
            await session.flush()
            return [to_record(Delivery, row) for row in rows]

    async def mark_delivered(self, delivery_id: int) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id)
                .values(status="sent", sent_at=self.clock(), last_error="")
            )

    async def mark_delivery_failed(self, delivery_id: int, *, error: str, retry_in: float) -> None:
        """Keep the delivery pending and due again in ``retry_in`` seconds."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id)
                .values(next_attempt_at=self.clock() + timedelta(seconds=retry_in), last_error=error[:2000])
            )

    async def mark_delivery_dropped(self, delivery_id: int, *, error: str) -> None:
        """Give up on a delivery that can never succeed (its sink was removed from the settings)."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id)
                .values(status="dropped", last_error=error)
            )

    async def list_deliveries(
        self, *, incident_id: int | None = None, status: str | None = None, limit: int = 200
    ) -> list[Delivery]:
        query = select(DeliveryRow).order_by(DeliveryRow.id).limit(limit)
        if incident_id is not None:
            query = query.where(DeliveryRow.incident_id == incident_id)
        if status is not None:
            query = query.where(DeliveryRow.status == status)
        async with self.sessions() as session:
            return [to_record(Delivery, row) for row in (await session.execute(query)).scalars()]
