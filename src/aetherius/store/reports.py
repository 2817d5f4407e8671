"""Report versions: every (re-)diagnosis of an incident adds one, as does every investigation answer
(``source``, see investigations.py); none is ever overwritten."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aetherius.signals import SEVERITY_RANK
from aetherius.store.base import StoreBase, to_record
from aetherius.store.engine import NotFound
from aetherius.store.models import IncidentRow, ReportRow
from aetherius.store.outbox import OutboxOps
from aetherius.store.records import Incident, Report


class ReportOps(OutboxOps, StoreBase):
    async def add_report(
        self,
        incident_id: int,
        *,
        document: dict[str, Any],
        markdown: str,
        root_cause: str = "",
        severity: str = "",
        summary: str = "",
        evidence_hash: str = "",
        reason: str = "",
        upstream_fingerprint: str = "",
    ) -> Report:
        """Store the next report version and carry its root cause and summary onto the incident.

        ``reason``, when given, becomes the incident's: the diagnosis's contract reason
        ("ImagePullBackOff") instead of the first Signal's ("Failed"). Held notifications of the
        incident are released, so they go out with this diagnosis.

        ``upstream_fingerprint`` names the incident the diagnosis' chain ends in (its root cause is
        another workload's failure). When that incident is open, this one links to it and its held
        notifications are folded into the root's: one problem, one notification, which lists what
        it affects (``downstream_incidents``).
        """
        now = self.clock()
        async with self.sessions.begin() as session:
            query = select(IncidentRow).where(IncidentRow.id == incident_id).with_for_update(key_share=True)
            incident = (await session.execute(query)).scalar_one_or_none()
            if incident is None:
                raise NotFound(f"incident {incident_id} does not exist")
            latest = await session.execute(
                select(func.coalesce(func.max(ReportRow.version), 0)).where(
                    ReportRow.incident_id == incident_id
                )
            )
            version = int(latest.scalar_one()) + 1
            row = ReportRow(
                incident_id=incident_id,
                version=version,
                created_at=now,
                root_cause=root_cause,
                severity=severity or incident.severity,
                summary=summary,
                evidence_hash=evidence_hash,
                document=document,
                markdown=markdown,
            )
            session.add(row)
            incident.report_version = version
            if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(incident.severity, 0):
                # NB: the diagnosis may know better than the Signal (an ImagePullBackOff's Event
                # is a warning; a pod that can never start is critical): one severity everywhere.
                incident.severity = severity
            if root_cause:
                incident.root_cause = root_cause
            if summary:
                incident.summary = summary
            if reason:
                incident.reason = reason
            upstream, waiting = await self._upstream(session, incident, upstream_fingerprint)
            incident.upstream_id = upstream
            incident.upstream_fingerprint = upstream_fingerprint if upstream is not None or waiting else ""
            incident.updated_at = now
            incident.version += 1
            await session.flush()
            if upstream is not None:
                await self._fold_deliveries(session, incident_id, into=upstream)
            elif not incident.upstream_fingerprint:
                await self._release_deliveries(session, incident_id, now=now)
            # NB: a root not open yet: the notices stay held (up to ``wait_for_report``) so that the
            # root's incident, when it opens, adopts this one and its notices fold into the root's.
            return to_record(Report, row)

    async def _upstream(
        self, session: AsyncSession, incident: IncidentRow, fingerprint: str
    ) -> tuple[int | None, bool]:
        """(the open incident of ``fingerprint``, when it is another incident of the same cluster;
        whether that root is not open yet, so this one waits to be adopted by it)."""
        if not fingerprint or fingerprint == incident.fingerprint:
            return None, False
        query = select(IncidentRow.id, IncidentRow.cluster_id, IncidentRow.upstream_id).where(
            IncidentRow.fingerprint == fingerprint, IncidentRow.state != "resolved"
        )
        row = (await session.execute(query)).first()
        if row is None:
            return None, True
        if row.cluster_id != incident.cluster_id or row.id == incident.id:
            return None, False
        # NB: never a loop of two incidents naming each other (each diagnosed while the other was
        # the worse): the one named first stays the root.
        return (None, False) if row.upstream_id == incident.id else (int(row.id), False)

    async def downstream_incidents(self, incident_id: int) -> list[Incident]:
        """The unresolved incidents whose root cause is in ``incident_id`` (newest first)."""
        query = (
            select(IncidentRow)
            .where(IncidentRow.upstream_id == incident_id, IncidentRow.state != "resolved")
            .order_by(IncidentRow.id.desc())
            .limit(50)
        )
        async with self.sessions() as session:
            return [to_record(Incident, row) for row in (await session.execute(query)).scalars()]

    async def list_reports(self, incident_id: int) -> list[Report]:
        """Every version of the incident's report, newest first."""
        query = (
            select(ReportRow).where(ReportRow.incident_id == incident_id).order_by(ReportRow.version.desc())
        )
        async with self.sessions() as session:
            return [to_record(Report, row) for row in (await session.execute(query)).scalars()]

    async def latest_report(self, incident_id: int, *, source: str | None = "rules") -> Report | None:
        """The newest version made by ``source`` (by default the rules': what notifications and the
        orchestrator compare; an investigation's answer is a version too but never the diagnosis)."""
        query = select(ReportRow).where(ReportRow.incident_id == incident_id)
        if source is not None:
            query = query.where(ReportRow.source == source)
        query = query.order_by(ReportRow.version.desc()).limit(1)
        async with self.sessions() as session:
            row = (await session.execute(query)).scalar_one_or_none()
            return None if row is None else to_record(Report, row)
