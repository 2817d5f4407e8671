"""Incidents: grouping upserts that never duplicate, state changes, the dashboard's list.

Several orchestrator replicas may see Signals of the same failure at the same moment. Each upsert
takes a per-fingerprint lock for its transaction (``pg_advisory_xact_lock`` on PostgreSQL; the
single writer lock on SQLite), and the unique partial index on the unresolved fingerprint stays as
the last line of defence: at most one open incident per failure, whatever the interleaving.

NB: incident rows are locked ``FOR NO KEY UPDATE`` (the id never changes): a Signal inserted with
its incident holds a key-share lock on that row until its commit (the foreign key), which a
plain ``FOR UPDATE`` elsewhere would wait for, and two such waits can close a cycle.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Integer, Select, String, Text, bindparam, cast, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from aetherius.signals import SEVERITY_RANK, Signal
from aetherius.store.base import StoreBase, to_record
from aetherius.store.engine import InvalidCursor, InvalidInput, InvalidTransition, NotFound
from aetherius.store.knowledge import KnowledgeOps
from aetherius.store.models import IncidentRow
from aetherius.store.outbox import OutboxOps
from aetherius.store.records import (
    Incident,
    IncidentChange,
    IncidentFilters,
    IncidentPage,
    IncidentRows,
    IncidentUpsert,
    NotificationEvent,
)
from aetherius.store.signals import SignalOps

DEFAULT_REOPEN_WITHIN = timedelta(hours=24)
MAX_PAGE = 500


_INCIDENTS = IncidentRow.__table__
_INCIDENT_FIELDS = tuple(f.name for f in dataclasses.fields(Incident))


def incident_record(row: IncidentRow) -> Incident:
    return to_record(Incident, row, affected_objects=list(row.affected_objects or []))


def _merge_affected(
    current: list[dict[str, str]], new: tuple[tuple[str, str, str], ...]
) -> list[dict[str, str]]:
    seen = {(o.get("kind", ""), o.get("namespace", ""), o.get("name", "")) for o in current}
    merged = list(current)
    for kind, namespace, name in new:
        if (kind, namespace, name) not in seen:
            seen.add((kind, namespace, name))
            merged.append({"kind": kind, "namespace": namespace, "name": name})
    return merged


_EQUALITY_FILTERS = ("cluster_id", "namespace", "severity", "state", "reason", "root_cause")
_TEXT_COLUMNS = ("summary", "object_name", "owner_name", "reason", "root_cause")


def _list_statement(shape: tuple[Any, ...]) -> Select[Any]:
    """The list query of one shape (see ``list_incident_rows``), every value a named bind."""
    _, selected, equal, unresolved, text, cursor, json_text = shape
    columns = [_INCIDENTS.c[name] for name in selected]
    if json_text:
        columns = [cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c for c in columns]
    query = select(*columns)
    for name in equal:
        query = query.where(_INCIDENTS.c[name] == bindparam(name))
    if unresolved:
        query = query.where(_INCIDENTS.c.state != "resolved")
    if text:
        pattern = bindparam("pattern", type_=String)
        query = query.where(or_(*(_INCIDENTS.c[name].ilike(pattern, escape="\\") for name in _TEXT_COLUMNS)))
    if cursor:
        before = tuple_(bindparam("before_seen", type_=_INCIDENTS.c.last_seen.type), bindparam("before_id"))
        query = query.where(tuple_(_INCIDENTS.c.last_seen, _INCIDENTS.c.id) < before)
    order = (_INCIDENTS.c.last_seen.desc(), _INCIDENTS.c.id.desc())
    return query.order_by(*order).limit(bindparam("limit", type_=Integer))


def encode_cursor(last_seen: datetime, ident: int) -> str:
    raw = json.dumps([last_seen.isoformat(), ident]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, ident = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(stamp)
        # NB: ids are 64-bit; a larger one is no cursor of ours (and PostgreSQL refuses the bind).
        if when.tzinfo is None or not isinstance(ident, int) or not -(2**63) <= ident < 2**63:
            raise ValueError(cursor)
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidCursor(
            f"invalid cursor {cursor[:40]!r}: use the next_cursor of a previous page"
        ) from None
    return when, ident


class IncidentOps(SignalOps, OutboxOps, KnowledgeOps, StoreBase):
    async def upsert_incident(
        self,
        change: IncidentUpsert,
        *,
        signal: Signal | None = None,
        reopen_within: timedelta | None = DEFAULT_REOPEN_WITHIN,
    ) -> IncidentChange:
        """Open, update or reopen the incident for ``change.fingerprint``, in one transaction.

        With ``signal``, the Signal is stored in the same transaction and a duplicate Signal
        (same dedup key and occurrence) changes nothing: this is what makes redelivery safe.
        A resolved incident recurring within ``reopen_within`` is reopened instead of a new one.
        Notifications for new/reopened/escalated incidents are queued in the same transaction.
        """
        now = self.clock()
        seen_at = change.seen_at or now
        async with self.sessions.begin() as session:
            await self.advisory_lock(session, f"incident:{change.fingerprint}")
            signal_id: int | None = None
            if signal is not None:
                signal_id = await self._insert_signal(session, signal, received_at=now)
                if signal_id is None:
                    return IncidentChange(incident=None, duplicate=True)
            row = await self._open_incident(session, change.fingerprint)
            created = reopened = escalated = False
            if row is None:
                row, reopened = await self._reopen_or_new(
                    session, change, seen_at=seen_at, now=now, reopen_within=reopen_within
                )
                created = not reopened
            if not created:
                escalated = not reopened and SEVERITY_RANK.get(change.severity, 0) > SEVERITY_RANK.get(
                    row.severity, 0
                )
                self._apply(row, change, seen_at=seen_at, now=now, reopened=reopened)
            row.signal_count += 1 if signal is not None else 0
            await session.flush()
            if created or reopened:
                await self._adopt_downstream(session, row)
            if signal_id is not None:
                await self._link_signal(session, signal_id, row.id)
            events: list[NotificationEvent] = []
            if created:
                events.append("new")
            elif reopened:
                events.append("reopened")
            elif escalated:
                events.append("escalated")
            queued = await self._enqueue_notifications(session, row, events, now=now)
            return IncidentChange(
                incident=incident_record(row),
                created=created,
                reopened=reopened,
                escalated=escalated,
                signal_id=signal_id,
                events=tuple(queued),
            )

    async def _adopt_downstream(self, session: AsyncSession, row: IncidentRow) -> None:
        """Incidents whose diagnosis named this one's fingerprint as their root, before it was
        open, now follow from it: linked, and their notices not yet sent folded into its own."""
        waiting = (
            await session.execute(
                select(IncidentRow).where(
                    IncidentRow.upstream_fingerprint == row.fingerprint,
                    IncidentRow.upstream_id.is_(None),
                    IncidentRow.state != "resolved",
                    IncidentRow.id != row.id,
                    IncidentRow.cluster_id == row.cluster_id,
                )
            )
        ).scalars()
        for downstream in waiting:
            if row.upstream_id == downstream.id:
                continue  # never two incidents naming each other
            downstream.upstream_id = row.id
            await self._fold_deliveries(session, downstream.id, into=row.id)

    async def _reopen_or_new(
        self,
        session: AsyncSession,
        change: IncidentUpsert,
        *,
        seen_at: datetime,
        now: datetime,
        reopen_within: timedelta | None,
    ) -> tuple[IncidentRow, bool]:
        """No incident of the fingerprint is open: the one resolved within ``reopen_within``
        reopened (True), or a new one added to the session (False)."""
        row = await self._recent_resolved(session, change.fingerprint, now, reopen_within)
        if row is None:
            row = self._new_incident(change, seen_at=seen_at, now=now)
            session.add(row)
            return row, False
        row.state = "open"
        row.reopen_count += 1
        row.resolved_at = row.acknowledged_at = None
        row.resolved_by = row.resolution_note = row.acknowledged_by = ""
        return row, True

    @staticmethod
    def _new_incident(change: IncidentUpsert, *, seen_at: datetime, now: datetime) -> IncidentRow:
        return IncidentRow(
            cluster_id=change.cluster_id,
            namespace=change.namespace,
            fingerprint=change.fingerprint,
            object_kind=change.object_kind,
            object_name=change.object_name,
            owner_kind=change.owner_kind,
            owner_name=change.owner_name,
            reason=change.reason,
            root_cause=change.root_cause,
            summary=change.summary,
            severity=change.severity,
            state="open",
            signal_count=0,
            event_count=change.event_count,
            first_seen=seen_at,
            last_seen=seen_at,
            affected_objects=_merge_affected([], change.affected),
            created_at=now,
            updated_at=now,
            acknowledged_by="",
            resolved_by="",
            resolution_note="",
            reopen_count=0,
            report_version=0,
            version=1,
        )

    @staticmethod
    def _apply(
        row: IncidentRow, change: IncidentUpsert, *, seen_at: datetime, now: datetime, reopened: bool
    ) -> None:
        row.last_seen = max(row.last_seen, seen_at)
        row.first_seen = min(row.first_seen, seen_at)
        row.event_count += change.event_count
        if reopened or SEVERITY_RANK.get(change.severity, 0) > SEVERITY_RANK.get(row.severity, 0):
            row.severity = change.severity
        if change.root_cause:
            row.root_cause = change.root_cause
        if change.summary:
            row.summary = change.summary
        # NB: a fresh JSON list, so the ORM sees the change (in-place mutation is not tracked).
        row.affected_objects = _merge_affected(list(row.affected_objects or []), change.affected)
        row.updated_at = now
        row.version += 1

    @staticmethod
    async def _open_incident(session: AsyncSession, fingerprint: str) -> IncidentRow | None:
        query = select(IncidentRow).where(
            IncidentRow.fingerprint == fingerprint, IncidentRow.state != "resolved"
        )
        return (await session.execute(query.with_for_update(key_share=True))).scalar_one_or_none()

    @staticmethod
    async def _recent_resolved(
        session: AsyncSession, fingerprint: str, now: datetime, within: timedelta | None
    ) -> IncidentRow | None:
        if within is None:
            return None
        query = (
            select(IncidentRow)
            .where(
                IncidentRow.fingerprint == fingerprint,
                IncidentRow.state == "resolved",
                IncidentRow.resolved_at >= now - within,
            )
            .order_by(IncidentRow.resolved_at.desc())
            .limit(1)
            .with_for_update(key_share=True)
        )
        return (await session.execute(query)).scalar_one_or_none()

    async def get_incident(self, incident_id: int) -> Incident:
        async with self.sessions() as session:
            row = await session.get(IncidentRow, incident_id)
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist")
            return incident_record(row)

    async def find_open_incident(self, fingerprint: str) -> Incident | None:
        async with self.sessions() as session:
            query = select(IncidentRow).where(
                IncidentRow.fingerprint == fingerprint, IncidentRow.state != "resolved"
            )
            row = (await session.execute(query)).scalar_one_or_none()
            return None if row is None else incident_record(row)

    async def list_incidents(
        self, filters: IncidentFilters | None = None, *, cursor: str | None = None, limit: int = 50
    ) -> IncidentPage:
        """Incidents matching ``filters``, most recently active first, ``limit`` at a time."""
        rows = await self.list_incident_rows(filters, columns=_INCIDENT_FIELDS, cursor=cursor, limit=limit)
        items = [Incident(**dict(zip(_INCIDENT_FIELDS, row, strict=True))) for row in rows.rows]
        return IncidentPage(items=items, next_cursor=rows.next_cursor)

    async def list_incident_rows(
        self,
        filters: IncidentFilters | None = None,
        *,
        columns: Sequence[str],
        cursor: str | None = None,
        limit: int = 50,
        json_text: bool = False,
    ) -> IncidentRows:
        """``list_incidents`` as bare rows of ``columns`` (a subset of ``Incident``'s fields).

        With ``json_text``, JSON columns (``affected_objects``) come as the JSON text the database
        holds, for a caller that writes JSON anyway: decoding and re-encoding it was a sixth of
        the cost of a page.

        The dashboard's and the API's hottest query: a Core select (no ORM rows) with keyset
        pagination on ``(last_seen, id)``, whose row comparison lets PostgreSQL and SQLite walk an
        index matching the ORDER BY backwards and stop after ``limit + 1`` rows, however deep the
        page. Its shape (which filters are set) is built once; the values travel as binds.
        """
        wanted = tuple(columns)
        selected = wanted + tuple(name for name in ("last_seen", "id") if name not in wanted)
        filters = filters or IncidentFilters()
        limit = max(1, min(limit, MAX_PAGE))
        params: dict[str, Any] = {"limit": limit + 1}
        equal = tuple(name for name in _EQUALITY_FILTERS if getattr(filters, name) is not None)
        for name in equal:
            params[name] = getattr(filters, name)
        for name in (*equal, "text"):
            if "\x00" in (getattr(filters, name) or ""):
                # NB: PostgreSQL text cannot hold NUL, so no incident can match; say so on both stores.
                raise InvalidInput(f"the {name} filter contains a NUL character")
        if filters.text:
            params["pattern"] = (
                "%" + filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
        if cursor:
            params["before_seen"], params["before_id"] = decode_cursor(cursor)
        shape = (
            "incidents",
            selected,
            equal,
            filters.unresolved,
            bool(filters.text),
            bool(cursor),
            json_text,
        )
        rows = await self.read_rows(shape, lambda: _list_statement(shape), params)
        kept = rows[:limit]
        next_cursor = None
        if len(rows) > limit and kept:
            last = kept[-1]
            next_cursor = encode_cursor(last[selected.index("last_seen")], last[selected.index("id")])
        return IncidentRows(columns=wanted, rows=kept, next_cursor=next_cursor)

    async def acknowledge_incident(self, incident_id: int, *, by: str = "", note: str = "") -> Incident:
        """Someone (``by``) is on it: open → acknowledged, recording who and when.

        Idempotent: acknowledging again keeps the first acknowledgement; a resolved incident
        cannot be acknowledged.
        """
        async with self.sessions.begin() as session:
            row = await self._locked(session, incident_id)
            if row.state == "resolved":
                raise InvalidTransition(f"incident {incident_id} is resolved; it cannot be acknowledged")
            if row.state == "open":
                now = self.clock()
                row.state = "acknowledged"
                row.acknowledged_at = now
                row.acknowledged_by = by
                if note:
                    row.resolution_note = note
                row.updated_at = now
                row.version += 1
            return incident_record(row)

    async def resolve_incident(self, incident_id: int, *, by: str, note: str = "") -> Incident:
        """Close an incident. Its summary, root cause and note become a past-incident document."""
        async with self.sessions.begin() as session:
            row = await self._locked(session, incident_id)
            if row.state == "resolved":
                raise InvalidTransition(f"incident {incident_id} is already resolved")
            now = self.clock()
            row.state = "resolved"
            row.resolved_at = now
            row.resolved_by = by
            row.resolution_note = note or row.resolution_note
            row.updated_at = now
            row.version += 1
            await self._remember_incident(session, row, now=now)
            return incident_record(row)

    async def _locked(self, session: AsyncSession, incident_id: int) -> IncidentRow:
        query = select(IncidentRow).where(IncidentRow.id == incident_id).with_for_update(key_share=True)
        row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        return row
