"""Many failure Signals into their incidents in one transaction: the orchestrator's write path.

Storing each Signal in its own transaction costs about seven round trips and a WAL flush per
Signal, and keeps the transaction open between them. ``record_failures`` stores a whole batch
with a fixed number of statements, however many Signals it holds:

1. the per-fingerprint locks of the batch, in one statement and in sorted order (every writer of
   incidents takes them before any row lock, so two batches never wait on each other in a cycle);
2. the batch's open incidents, locked in one ``SELECT ... FOR UPDATE``;
3. the Signals, in one multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: a redelivered
   Signal (same dedup key and occurrence) is a duplicate and changes nothing;
4. the changed incidents, one executemany; then the commit.

Signals are applied in the order given, so the result is the one ``upsert_incident`` one at a
time would give (counts, first/last seen, severity, affected objects, opened/reopened/escalated
notices). A fingerprint without an open incident is opened or reopened in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from aetherius.signals import SEVERITY_RANK, Signal
from aetherius.store.base import lock_key
from aetherius.store.incidents import DEFAULT_REOPEN_WITHIN, IncidentOps, incident_record
from aetherius.store.models import IncidentRow, SignalRow
from aetherius.store.records import Incident, IncidentChange, IncidentUpsert, NotificationEvent
from aetherius.store.signals import signal_values

_SIGNALS = SignalRow.__table__
_LOCKS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k")
# NB: a Core UPDATE of the table: given a list of parameters, an ORM update(SignalRow) would be
# the ORM's bulk update by primary key instead.
_LINK = (
    update(_SIGNALS)  # type: ignore[arg-type]
    .where(_SIGNALS.c.id == bindparam("signal_id"))
    .values(incident_id=bindparam("linked_incident"))
)


class IncidentBatchOps(IncidentOps):
    _signal_insert: Any = None

    def _signals_insert(self) -> Any:
        if self._signal_insert is None:
            self._signal_insert = (
                self.insert(_SIGNALS)
                .on_conflict_do_nothing(index_elements=["dedup_key", "occurrence"])
                .returning(_SIGNALS.c.id, _SIGNALS.c.dedup_key, _SIGNALS.c.occurrence)
            )
        return self._signal_insert

    async def record_failures(
        self,
        items: Sequence[tuple[IncidentUpsert, Signal]],
        *,
        reopen_within: timedelta | None = DEFAULT_REOPEN_WITHIN,
    ) -> list[IncidentChange]:
        """Store each Signal and open, update or reopen its incident; one transaction for all.

        One ``IncidentChange`` per item, in order. A duplicate's change has ``duplicate`` set and
        the fingerprint's open incident (None when there is none): nothing was changed for it.
        The incident in every change is as committed, after the whole batch.
        """
        if not items:
            return []
        now = self.clock()
        async with self.sessions.begin() as session:
            fingerprints = sorted({change.fingerprint for change, _ in items})
            await self._lock_fingerprints(session, fingerprints)
            query = (
                select(IncidentRow)
                .where(IncidentRow.fingerprint.in_(fingerprints), IncidentRow.state != "resolved")
                .order_by(IncidentRow.id)
                .with_for_update()
            )
            rows = {row.fingerprint: row for row in (await session.execute(query)).scalars()}
            missing = set(fingerprints) - rows.keys()
            inserted = await self._insert_signals(session, items, rows=rows, now=now)
            outcomes: list[tuple[IncidentUpsert, int | None, bool, bool, bool]] = []
            events: dict[str, list[NotificationEvent]] = {}
            for change, signal in items:
                signal_id = inserted.pop((signal.dedup_key, signal.occurrence), None)
                if signal_id is None:
                    outcomes.append((change, None, False, False, False))
                    continue
                created, reopened, escalated = await self._apply_one(
                    session, rows, change, now=now, reopen_within=reopen_within
                )
                outcomes.append((change, signal_id, created, reopened, escalated))
                if created or reopened or escalated:
                    event: NotificationEvent = "new" if created else "reopened" if reopened else "escalated"
                    events.setdefault(change.fingerprint, []).append(event)
            await session.flush()
            links = [
                {"signal_id": signal_id, "linked_incident": rows[change.fingerprint].id}
                for change, signal_id, *_ in outcomes
                if signal_id is not None and change.fingerprint in missing
            ]
            if links:
                await session.execute(_LINK, links)
            for fingerprint, owed in events.items():
                await self._enqueue_notifications(session, rows[fingerprint], owed, now=now)
            records: dict[str, Incident] = {}
            result: list[IncidentChange] = []
            for change, signal_id, created, reopened, escalated in outcomes:
                row = rows.get(change.fingerprint)
                record = None
                if row is not None:
                    record = records.get(change.fingerprint)
                    if record is None:
                        record = records[change.fingerprint] = incident_record(row)
                mine: tuple[NotificationEvent, ...] = (
                    ("new",)
                    if created
                    else ("reopened",)
                    if reopened
                    else ("escalated",)
                    if escalated
                    else ()
                )
                result.append(
                    IncidentChange(
                        incident=record,
                        created=created,
                        reopened=reopened,
                        escalated=escalated,
                        duplicate=signal_id is None,
                        signal_id=signal_id,
                        events=mine,
                    )
                )
            return result

    async def _lock_fingerprints(self, session: AsyncSession, fingerprints: Sequence[str]) -> None:
        """The per-fingerprint locks ``upsert_incident`` takes, all at once, in a fixed order."""
        if self.is_postgresql:
            keys = sorted({lock_key(f"incident:{fingerprint}") for fingerprint in fingerprints})
            await session.execute(_LOCKS, {"keys": keys})

    async def _insert_signals(
        self,
        session: AsyncSession,
        items: Sequence[tuple[IncidentUpsert, Signal]],
        *,
        rows: dict[str, IncidentRow],
        now: datetime,
    ) -> dict[tuple[str, int], int]:
        """Insert the Signals not stored yet; (dedup key, occurrence) → new row id."""
        params = []
        for change, signal in items:
            row = rows.get(change.fingerprint)
            values = signal_values(signal, received_at=now)
            values["incident_id"] = row.id if row is not None else None
            params.append(values)
        result = await session.execute(self._signals_insert(), params)
        return {(r.dedup_key, r.occurrence): r.id for r in result}

    async def _apply_one(
        self,
        session: AsyncSession,
        rows: dict[str, IncidentRow],
        change: IncidentUpsert,
        *,
        now: datetime,
        reopen_within: timedelta | None,
    ) -> tuple[bool, bool, bool]:
        """One new Signal onto its incident (opened or reopened when none is open): (created,
        reopened, escalated), as ``upsert_incident`` decides them."""
        seen_at = change.seen_at or now
        row = rows.get(change.fingerprint)
        created = reopened = escalated = False
        if row is None:
            row, reopened = await self._reopen_or_new(
                session, change, seen_at=seen_at, now=now, reopen_within=reopen_within
            )
            created = not reopened
            rows[change.fingerprint] = row
        if not created:
            escalated = not reopened and SEVERITY_RANK.get(change.severity, 0) > SEVERITY_RANK.get(
                row.severity, 0
            )
            self._apply(row, change, seen_at=seen_at, now=now, reopened=reopened)
        row.signal_count += 1
        return created, reopened, escalated
