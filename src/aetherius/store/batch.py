"""Many failure Signals into their incidents in one transaction: the orchestrator's write path.

Storing each Signal in its own transaction costs about seven round trips and a WAL flush per
Signal, and keeps the incident locked between them. ``record_failures`` stores a whole batch with
a fixed number of statements, however many Signals it holds. On PostgreSQL, for the usual case
(Signals of incidents already open):

1. the batch's open incidents are looked up, without a lock;
2. the Signals go in with their incident in one multi-row ``INSERT ... ON CONFLICT DO NOTHING
   RETURNING``: a redelivered Signal (same dedup key and occurrence) is a duplicate, no change;
3. one ``UPDATE`` adds each incident's new Signals in SQL (counts, first/last seen, severity,
   affected objects), its rows locked in id order, and the commit follows at once.

So an incident is locked for one statement and the commit, never while Python works: replicas
writing Signals of the same incident wait on each other for that long only. Fingerprints without
an open incident (opened or reopened here), resolved meanwhile, or bringing a root cause or
summary take the general path, in the same transaction: the per-fingerprint locks of
``upsert_incident`` (one statement, sorted, so two batches never wait on each other in a cycle),
then the rows locked and the Signals applied one by one in order (the only path on SQLite).

Either way the result is the one ``upsert_incident`` one Signal at a time would give: counts,
first/last seen, severity, affected objects, and the new/reopened/escalated notices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import String, any_, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from aetherius.signals import SEVERITY_RANK, Signal
from aetherius.store.base import lock_key
from aetherius.store.incidents import DEFAULT_REOPEN_WITHIN, IncidentOps, incident_record
from aetherius.store.models import IncidentRow, SignalRow
from aetherius.store.records import Incident, IncidentChange, IncidentUpsert, NotificationEvent
from aetherius.store.signals import signal_values

_SIGNALS = SignalRow.__table__
_INCIDENTS = IncidentRow.__table__
_FIELDS = tuple(f.name for f in dataclasses.fields(Incident))
_LOCKS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k")
# NB: a Core UPDATE of the table: given a list of parameters, an ORM update(SignalRow) would be
# the ORM's bulk update by primary key instead.
_LINK = (
    update(_SIGNALS)  # type: ignore[arg-type]
    .where(_SIGNALS.c.id == bindparam("signal_id"))
    .values(incident_id=bindparam("linked_incident"))
)
_OPEN_RECORDS = select(*(_INCIDENTS.c[name] for name in _FIELDS)).where(
    _INCIDENTS.c.fingerprint.in_(bindparam("fingerprints", expanding=True)),
    _INCIDENTS.c.state != "resolved",
)
_RANK = "CASE i.severity {} ELSE 0 END".format(
    " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in SEVERITY_RANK.items())
)
# One row of ``v`` per open incident with new Signals: what they add. ``old`` locks the rows in id
# order (and reads the severity before, for the escalation notices).
_ADD_SIGNALS = text(
    f"""
WITH v AS (
    SELECT * FROM unnest(
        CAST(:ids AS bigint[]), CAST(:signals AS bigint[]), CAST(:events AS bigint[]),
        CAST(:firsts AS timestamptz[]), CAST(:lasts AS timestamptz[]),
        CAST(:severities AS text[]), CAST(:ranks AS int[]), CAST(:affected AS jsonb[])
    ) AS v(id, signals, events, first_seen, last_seen, severity, rank, affected)
), old AS (
    SELECT i.id, i.severity FROM incidents i JOIN v ON v.id = i.id
    WHERE i.state <> 'resolved' ORDER BY i.id FOR NO KEY UPDATE OF i
)
UPDATE incidents i SET
    signal_count = i.signal_count + v.signals,
    event_count = i.event_count + v.events,
    first_seen = least(i.first_seen, v.first_seen),
    last_seen = greatest(i.last_seen, v.last_seen),
    severity = CASE WHEN v.rank > {_RANK} THEN v.severity ELSE i.severity END,
    affected_objects = i.affected_objects || coalesce((
        SELECT jsonb_agg(o.value ORDER BY o.n) FROM jsonb_array_elements(v.affected) WITH ORDINALITY AS o(value, n)
        WHERE NOT i.affected_objects @> jsonb_build_array(o.value)
    ), '[]'::jsonb),
    updated_at = :now,
    version = i.version + v.signals
FROM v JOIN old ON old.id = v.id
WHERE i.id = v.id
RETURNING {", ".join(f"i.{name}" for name in _FIELDS)}, old.severity AS severity_before
"""
).columns(*(_INCIDENTS.c[name] for name in _FIELDS), severity_before=String)


class _ResolvedMeanwhile(Exception):
    """An incident of the batch was resolved after the look-up: take the general path."""


class IncidentBatchOps(IncidentOps):
    _signal_insert: Any = None

    async def record_failures(
        self,
        items: Sequence[tuple[IncidentUpsert, Signal]],
        *,
        reopen_within: timedelta | None = DEFAULT_REOPEN_WITHIN,
    ) -> list[IncidentChange]:
        """Store each Signal and open, update or reopen its incident.

        One ``IncidentChange`` per item, in order. A duplicate's change has ``duplicate`` set and
        the fingerprint's open incident (None when there is none): nothing was changed for it.
        The incident in every change is as committed. On SQLite one transaction; on PostgreSQL
        one for the open incidents' Signals and one for the others (see the module docstring).
        """
        if not items:
            return []
        now = self.clock()
        if not self.is_postgresql:
            async with self.sessions.begin() as session:
                return await self._record_in_order(session, items, now=now, reopen_within=reopen_within)
        fingerprints = sorted({change.fingerprint for change, _ in items})
        found: dict[str, int] = {
            fingerprint: incident_id
            for fingerprint, incident_id in await self.read_rows(
                "open-incidents-of-fingerprints",
                _open_incidents_of_fingerprints,
                {"fingerprints": fingerprints},
            )
        }
        general = set(fingerprints) - found.keys()
        general |= {change.fingerprint for change, _ in items if change.root_cause or change.summary}
        results: dict[int, IncidentChange] = {}
        indexes = [i for i, (change, _) in enumerate(items) if change.fingerprint in general]
        if indexes:
            async with self.sessions.begin() as session:
                changes = await self._record_in_order(
                    session, [items[i] for i in indexes], now=now, reopen_within=reopen_within
                )
            results.update(zip(indexes, changes, strict=True))
        indexes = [i for i in range(len(items)) if i not in results]
        if indexes:
            chosen = [items[i] for i in indexes]
            try:
                async with self.sessions.begin() as session:
                    changes = await self._record_open(session, chosen, incident_ids=found, now=now)
            except _ResolvedMeanwhile:
                async with self.sessions.begin() as session:
                    changes = await self._record_in_order(
                        session, chosen, now=now, reopen_within=reopen_within
                    )
            results.update(zip(indexes, changes, strict=True))
        return [results[i] for i in range(len(items))]

    async def _record_open(
        self,
        session: AsyncSession,
        items: Sequence[tuple[IncidentUpsert, Signal]],
        *,
        incident_ids: dict[str, int],
        now: datetime,
    ) -> list[IncidentChange]:
        """Signals of incidents open at the look-up: stored, then added in one statement.

        NB: this transaction takes row locks in that one statement only (in id order), the
        general path only after the per-fingerprint locks: no two batches wait in a cycle.
        Raises ``_ResolvedMeanwhile`` (rolling back) when one of the incidents was resolved since.
        """
        signal_ids = await self._insert_signals(session, items, incident_ids=incident_ids, now=now)
        added: dict[str, list[int]] = {}
        for i, (change, _) in enumerate(items):
            if signal_ids[i] is not None:
                added.setdefault(change.fingerprint, []).append(i)
        updated, escalations = await self._add_signals(
            session, items, {fingerprint: incident_ids[fingerprint] for fingerprint in added}, added, now=now
        )
        if len(updated) < len(added):
            raise _ResolvedMeanwhile
        unchanged = sorted({change.fingerprint for change, _ in items} - updated.keys())
        if unchanged:  # only duplicates: the incident as it is, if still open
            for row in (await session.execute(_OPEN_RECORDS, {"fingerprints": unchanged})).all():
                record = Incident(**dict(zip(_FIELDS, row, strict=True)))
                updated[record.fingerprint] = record
        for i in sorted(escalations):
            record = updated[items[i][0].fingerprint]
            # NB: each escalation's notice judged at the severity it escalated to, as one at a time
            at = dataclasses.replace(record, severity=items[i][0].severity)
            await self._enqueue_notifications(session, at, ["escalated"], now=now)
        return [
            IncidentChange(
                incident=updated.get(change.fingerprint),
                escalated=i in escalations,
                duplicate=signal_ids[i] is None,
                signal_id=signal_ids[i],
                events=("escalated",) if i in escalations else (),
            )
            for i, (change, _) in enumerate(items)
        ]

    async def _add_signals(
        self,
        session: AsyncSession,
        items: Sequence[tuple[IncidentUpsert, Signal]],
        incident_ids: dict[str, int],
        added: dict[str, list[int]],
        *,
        now: datetime,
    ) -> tuple[dict[str, Incident], set[int]]:
        """The new Signals onto their open incidents, one statement: the incidents as updated
        (those resolved meanwhile are missing) and the items that escalated their incident."""
        if not incident_ids:
            return {}, set()
        columns: dict[str, list[Any]] = {
            k: [] for k in ("ids", "signals", "events", "firsts", "lasts", "severities", "ranks", "affected")
        }
        for fingerprint, incident_id in incident_ids.items():
            changes = [items[i][0] for i in added[fingerprint]]
            seen = [change.seen_at or now for change in changes]
            top = max(changes, key=lambda c: SEVERITY_RANK.get(c.severity, 0))
            objects: dict[tuple[str, str, str], None] = {}
            for change in changes:
                objects.update(dict.fromkeys(change.affected))
            affected = [{"kind": k, "namespace": ns, "name": n} for k, ns, n in objects]
            for key, value in (
                ("ids", incident_id),
                ("signals", len(changes)),
                ("events", sum(change.event_count for change in changes)),
                ("firsts", min(seen)),
                ("lasts", max(seen)),
                ("severities", top.severity),
                ("ranks", SEVERITY_RANK.get(top.severity, 0)),
                ("affected", orjson.dumps(affected).decode()),
            ):
                columns[key].append(value)
        rows = (await session.execute(_ADD_SIGNALS, {**columns, "now": now})).all()
        updated: dict[str, Incident] = {}
        escalations: set[int] = set()
        for row in rows:
            record = Incident(**{name: getattr(row, name) for name in _FIELDS})
            updated[record.fingerprint] = record
            running = SEVERITY_RANK.get(row.severity_before, 0)
            for i in added[record.fingerprint]:
                rank = SEVERITY_RANK.get(items[i][0].severity, 0)
                if rank > running:
                    escalations.add(i)
                    running = rank
        return updated, escalations

    async def _record_in_order(
        self,
        session: AsyncSession,
        items: Sequence[tuple[IncidentUpsert, Signal]],
        *,
        now: datetime,
        reopen_within: timedelta | None,
    ) -> list[IncidentChange]:
        """The general path: fingerprints locked, rows locked, Signals applied one by one."""
        fingerprints = sorted({change.fingerprint for change, _ in items})
        await self._lock_fingerprints(session, fingerprints)
        query = (
            select(IncidentRow)
            .where(IncidentRow.fingerprint.in_(fingerprints), IncidentRow.state != "resolved")
            .order_by(IncidentRow.id)
            .with_for_update(key_share=True)
        )
        rows = {row.fingerprint: row for row in (await session.execute(query)).scalars()}
        ids = {fingerprint: row.id for fingerprint, row in rows.items()}
        signal_ids = await self._insert_signals(session, items, incident_ids=ids, now=now)
        relink = set(fingerprints) - rows.keys()  # opened or reopened here
        outcomes: list[tuple[bool, bool, bool]] = []
        events: dict[str, list[NotificationEvent]] = {}
        for (change, _), signal_id in zip(items, signal_ids, strict=True):
            if signal_id is None:
                outcomes.append((False, False, False))
                continue
            outcome = await self._apply_one(session, rows, change, now=now, reopen_within=reopen_within)
            outcomes.append(outcome)
            event = _event(*outcome)
            if event:
                events.setdefault(change.fingerprint, []).append(event[0])
        await session.flush()
        for fingerprint in sorted(relink & rows.keys()):
            await self._adopt_downstream(session, rows[fingerprint])
        links = [
            {"signal_id": signal_id, "linked_incident": rows[change.fingerprint].id}
            for (change, _), signal_id in zip(items, signal_ids, strict=True)
            if signal_id is not None and change.fingerprint in relink
        ]
        if links:
            await session.execute(_LINK, links)
        for fingerprint, owed in events.items():
            await self._enqueue_notifications(session, rows[fingerprint], owed, now=now)
        records = {fingerprint: incident_record(row) for fingerprint, row in rows.items()}
        return [
            IncidentChange(
                incident=records.get(change.fingerprint),
                created=created,
                reopened=reopened,
                escalated=escalated,
                duplicate=signal_id is None,
                signal_id=signal_id,
                events=_event(created, reopened, escalated),
            )
            for (change, _), signal_id, (created, reopened, escalated) in zip(
                items, signal_ids, outcomes, strict=True
            )
        ]

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
        incident_ids: dict[str, int],
        now: datetime,
    ) -> list[int | None]:
        """Insert the Signals not stored yet; per item its new row id, None for a duplicate."""
        if self._signal_insert is None:
            self._signal_insert = (
                self.insert(_SIGNALS)
                .on_conflict_do_nothing(index_elements=["dedup_key", "occurrence"])
                .returning(_SIGNALS.c.id, _SIGNALS.c.dedup_key, _SIGNALS.c.occurrence)
            )
        params = []
        for change, signal in items:
            values = signal_values(signal, received_at=now)
            values["incident_id"] = incident_ids.get(change.fingerprint)
            params.append(values)
        # NB: in key order: two batches inserting the same Signals (a redelivery racing its first
        # delivery) in different orders would each wait for a row the other inserted.
        params.sort(key=lambda p: (p["dedup_key"], p["occurrence"]))
        result = await session.execute(self._signal_insert, params)
        inserted = {(r.dedup_key, r.occurrence): r.id for r in result}
        # NB: pop: of one Signal twice in the batch, the first is stored, the second a duplicate
        return [inserted.pop((signal.dedup_key, signal.occurrence), None) for _, signal in items]

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


def _event(created: bool, reopened: bool, escalated: bool) -> tuple[NotificationEvent, ...]:
    if created:
        return ("new",)
    if reopened:
        return ("reopened",)
    return ("escalated",) if escalated else ()


def _open_incidents_of_fingerprints() -> Executable:
    """Fingerprint and id of the open incidents among ``:fingerprints`` (PostgreSQL only).

    NB: ``= ANY(array)`` rather than ``IN``: one bind whatever the count, so the statement is
    compiled once (``read_rows``).
    """
    return select(_INCIDENTS.c.fingerprint, _INCIDENTS.c.id).where(
        _INCIDENTS.c.fingerprint == any_(bindparam("fingerprints", type_=ARRAY(String))),
        _INCIDENTS.c.state != "resolved",
    )
