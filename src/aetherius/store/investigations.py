"""Investigations by the Reasoning Service, their answers as report versions, and what replicas
share without Redis: the answer cache and each cluster's daily token spend.

An investigation lives in the store, not in the memory of the replica that started it: any API
replica answers its status, streams its progress and continues its conversation. Each answer is
stored as a report version with ``source = "investigation"``; it never replaces the incident's
root cause or summary (those stay the rules'), and it releases no notification.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from aetherius.store.base import StoreBase, to_record
from aetherius.store.engine import InvalidTransition, NotFound
from aetherius.store.models import (
    IncidentRow,
    InvestigationRow,
    ReasoningAnswerRow,
    ReasoningSpendRow,
    ReportRow,
)
from aetherius.store.records import InvestigationRecord, ReasoningSpend, Report

MAX_PROGRESS = 200  # progress events kept per investigation: a runaway cannot grow the row


def _append(row: InvestigationRow, event: dict[str, Any]) -> None:
    """Add a progress event numbered ``n`` (1, 2, …): a stream sends those after the last it sent,
    which stays right when the oldest are dropped at the cap."""
    last = int(row.progress[-1].get("n", len(row.progress))) if row.progress else 0
    row.progress = [*row.progress, {**event, "n": last + 1}][-MAX_PROGRESS:]


class InvestigationOps(StoreBase):
    async def create_investigation(
        self, incident_id: int, *, trigger: str = "person", requested_by: str = "", question: str = ""
    ) -> InvestigationRecord:
        """A running investigation of an existing incident (``NotFound`` otherwise)."""
        now = self.clock()
        async with self.sessions.begin() as session:
            incident = await session.get(IncidentRow, incident_id)
            if incident is None:
                raise NotFound(f"incident {incident_id} does not exist")
            row = InvestigationRow(
                id=uuid.uuid4().hex,
                incident_id=incident_id,
                cluster_id=incident.cluster_id,
                status="running",
                trigger=trigger,
                requested_by=requested_by,
                question=question,
                created_at=now,
                updated_at=now,
                ending="",
                model="",
                tokens_in=0,
                tokens_out=0,
                cost=0.0,
                turns=0,
                answer={},
                conversation={},
                progress=[],
            )
            session.add(row)
            await session.flush()
            return to_record(InvestigationRecord, row)

    async def get_investigation(self, investigation_id: str) -> InvestigationRecord:
        async with self.sessions() as session:
            row = await session.get(InvestigationRow, investigation_id)
            if row is None:
                raise NotFound(f"investigation {investigation_id} does not exist")
            return to_record(InvestigationRecord, row)

    async def list_investigations(self, incident_id: int, *, limit: int = 50) -> list[InvestigationRecord]:
        """The incident's investigations, newest first."""
        query = (
            select(InvestigationRow)
            .where(InvestigationRow.incident_id == incident_id)
            .order_by(InvestigationRow.created_at.desc(), InvestigationRow.id)
            .limit(limit)
        )
        async with self.sessions() as session:
            return [to_record(InvestigationRecord, r) for r in (await session.execute(query)).scalars()]

    async def reasoning_spend(self, *, since: datetime) -> list[ReasoningSpend]:
        """Per cluster, the investigations updated since ``since`` with their tokens and cost.

        Why from the investigations and not the budget's counter: the counter (Redis or
        ``reasoning_spend``) holds tokens only, and cost needs input and output apart. An
        investigation continued today counts with all its turns.
        """
        row = InvestigationRow
        query = (
            select(
                row.cluster_id,
                func.count(),
                func.coalesce(func.sum(row.tokens_in), 0),
                func.coalesce(func.sum(row.tokens_out), 0),
                func.coalesce(func.sum(row.cost), 0.0),
            )
            .where(row.updated_at >= since)
            .group_by(row.cluster_id)
            .order_by(row.cluster_id)
        )
        async with self.sessions() as session:
            return [
                ReasoningSpend(
                    cluster_id=cluster,
                    investigations=int(count),
                    tokens_in=int(tokens_in),
                    tokens_out=int(tokens_out),
                    cost=float(cost),
                )
                for cluster, count, tokens_in, tokens_out, cost in (await session.execute(query)).all()
            ]

    async def add_investigation_progress(self, investigation_id: str, event: dict[str, Any]) -> None:
        """Append one progress event (what the live stream of any replica reads)."""
        async with self.sessions.begin() as session:
            row = await session.get(InvestigationRow, investigation_id, with_for_update=True)
            if row is None:
                return
            _append(row, event)
            row.updated_at = self.clock()

    async def begin_investigation_turn(
        self, investigation_id: str, *, question: str, stale_after: float = 3600.0
    ) -> InvestigationRecord:
        """A follow-up starts: ``InvalidTransition`` while the previous turn is still running.

        A turn silent for ``stale_after`` seconds is taken as dead (its process was killed before it
        could say so) and no longer blocks the conversation.
        """
        now = self.clock()
        async with self.sessions.begin() as session:
            row = await session.get(InvestigationRow, investigation_id, with_for_update=True)
            if row is None:
                raise NotFound(f"investigation {investigation_id} does not exist")
            if row.status == "running" and row.updated_at > now - timedelta(seconds=stale_after):
                raise InvalidTransition(f"investigation {investigation_id} is still running")
            row.status, row.question, row.updated_at = "running", question, now
            _append(row, {"event": "question", "question": question})
            await session.flush()
            return to_record(InvestigationRecord, row)

    async def finish_investigation(
        self,
        investigation_id: str,
        *,
        answer: dict[str, Any],
        conversation: dict[str, Any],
        report: dict[str, Any] | None,
        markdown: str = "",
    ) -> InvestigationRecord:
        """Store a turn's answer; with ``report`` (the document), also as the incident's next report
        version, in the same transaction. Tokens and cost add up over the turns."""
        now = self.clock()
        async with self.sessions.begin() as session:
            row = await session.get(InvestigationRow, investigation_id, with_for_update=True)
            if row is None:
                raise NotFound(f"investigation {investigation_id} does not exist")
            tokens_in, tokens_out = int(answer.get("input_tokens", 0)), int(answer.get("output_tokens", 0))
            cost = float(answer.get("cost", 0.0))
            if report is not None:
                row.report_version = await self._investigation_report(
                    session,
                    row,
                    answer=answer,
                    document=report,
                    markdown=markdown,
                )
            row.status, row.ending, row.model = (
                "done",
                str(answer.get("ending", "")),
                str(answer.get("model", "")),
            )
            row.tokens_in += tokens_in
            row.tokens_out += tokens_out
            row.cost += cost
            row.turns += 1
            row.answer, row.conversation, row.updated_at = answer, conversation, now
            _append(row, {"event": "done", "ending": row.ending})
            await session.flush()
            return to_record(InvestigationRecord, row)

    async def _investigation_report(
        self,
        session: Any,
        row: InvestigationRow,
        *,
        answer: dict[str, Any],
        document: dict[str, Any],
        markdown: str,
    ) -> int:
        incident = await session.get(IncidentRow, row.incident_id, with_for_update=True)
        if incident is None:
            raise NotFound(f"incident {row.incident_id} does not exist")
        latest = await session.execute(
            select(func.coalesce(func.max(ReportRow.version), 0)).where(ReportRow.incident_id == incident.id)
        )
        version = int(latest.scalar_one()) + 1
        session.add(
            ReportRow(
                incident_id=incident.id,
                version=version,
                created_at=self.clock(),
                root_cause=str(answer.get("root_cause", "")),
                severity=incident.severity,
                summary=str(answer.get("summary", "")),
                evidence_hash="",
                document=document,
                markdown=markdown,
                source="investigation",
                model=str(answer.get("model", "")),
                tokens_in=int(answer.get("input_tokens", 0)),
                tokens_out=int(answer.get("output_tokens", 0)),
                cost=float(answer.get("cost", 0.0)),
                ending=str(answer.get("ending", "")),
            )
        )
        # NB: the incident's root cause, summary and report_version stay the rules'; its version
        # moves so that open pages hear of the new answer (api/events.py).
        incident.version += 1
        incident.updated_at = self.clock()
        return version

    async def investigation_reports(self, incident_id: int) -> list[Report]:
        query = (
            select(ReportRow)
            .where(ReportRow.incident_id == incident_id, ReportRow.source == "investigation")
            .order_by(ReportRow.version.desc())
        )
        async with self.sessions() as session:
            return [to_record(Report, r) for r in (await session.execute(query)).scalars()]

    # The answer cache and the daily spend, for installations without Redis.

    async def cached_answer(self, key: str) -> str | None:
        async with self.sessions() as session:
            row = await session.get(ReasoningAnswerRow, key)
            return None if row is None or row.expires_at <= self.clock() else row.value

    async def cache_answer(self, key: str, value: str, *, ttl: float) -> None:
        table = ReasoningAnswerRow.__table__
        until = self.clock() + timedelta(seconds=ttl)
        statement = self.insert(table).values(key=key, value=value, expires_at=until)
        statement = statement.on_conflict_do_update(
            index_elements=["key"], set_={"value": statement.excluded.value, "expires_at": until}
        )
        async with self.sessions.begin() as session:
            await session.execute(statement)

    async def spend_tokens(self, cluster_id: str, *, day: str, tokens: int) -> int:
        """Add ``tokens`` to the cluster's spend of ``day`` (one atomic upsert); the new total."""
        table = ReasoningSpendRow.__table__
        statement = self.insert(table).values(cluster_id=cluster_id, day=day, tokens=tokens)
        statement = statement.on_conflict_do_update(
            index_elements=["cluster_id", "day"], set_={"tokens": table.c.tokens + statement.excluded.tokens}
        ).returning(table.c.tokens)
        async with self.sessions.begin() as session:
            return int((await session.execute(statement)).scalar_one())

    async def spent_tokens(self, cluster_id: str, *, day: str) -> int:
        async with self.sessions() as session:
            row = await session.get(ReasoningSpendRow, (cluster_id, day))
            return 0 if row is None else int(row.tokens)
