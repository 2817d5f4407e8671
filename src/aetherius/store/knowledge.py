"""Knowledge documents and their full-text search, per database.

PostgreSQL ranks a weighted ``tsvector`` (GIN index) with ``ts_rank_cd``; SQLite ranks its FTS5
table with ``bm25``. Both get the same OR-of-words query built from the text, so "similar" means
"shares the most telling words", and both are reached through the same two methods.
``reason``/``root_cause`` of a runbook may list several values separated by spaces.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal, literal_column, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from aetherius.store.base import StoreBase, to_record
from aetherius.store.models import IncidentRow, KnowledgeRow
from aetherius.store.records import KnowledgeDocument

_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
MAX_QUERY_WORDS = 40


def query_words(text_: str) -> list[str]:
    """Distinct lower-case words of a text, in order, bounded (the FTS query is OR of these)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text_.lower()):
        seen.setdefault(word, None)
        if len(seen) >= MAX_QUERY_WORDS:
            break
    return list(seen)


def _listed(column: Any, value: str) -> Any:
    """``value`` is one of the space-separated values in ``column``."""
    return (literal(" ") + column + literal(" ")).like(f"% {value} %")


def _document(row: KnowledgeRow, score: float = 0.0) -> KnowledgeDocument:
    return to_record(KnowledgeDocument, row, score=score)


class KnowledgeOps(StoreBase):
    async def upsert_document(
        self,
        *,
        source: str,
        slug: str,
        title: str,
        body: str,
        reasons: Iterable[str] = (),
        root_causes: Iterable[str] = (),
        incident_id: int | None = None,
    ) -> int:
        """Insert or update the document (source, slug); unchanged content is not rewritten."""
        async with self.sessions.begin() as session:
            return await self._upsert_document(
                session,
                source=source,
                slug=slug,
                title=title,
                body=body,
                reason=" ".join(reasons),
                root_cause=" ".join(root_causes),
                incident_id=incident_id,
                now=self.clock(),
            )

    async def _upsert_document(
        self,
        session: AsyncSession,
        *,
        source: str,
        slug: str,
        title: str,
        body: str,
        reason: str,
        root_cause: str,
        incident_id: int | None,
        now: datetime,
    ) -> int:
        digest = hashlib.sha256("\x1f".join((title, reason, root_cause, body)).encode()).hexdigest()
        query = select(KnowledgeRow).where(KnowledgeRow.source == source, KnowledgeRow.slug == slug)
        row = (await session.execute(query.with_for_update())).scalar_one_or_none()
        if row is None:
            row = KnowledgeRow(source=source, slug=slug)
            session.add(row)
        elif row.content_hash == digest:
            return row.id
        row.title, row.body, row.reason, row.root_cause = title, body, reason, root_cause
        row.content_hash, row.incident_id, row.updated_at = digest, incident_id, now
        await session.flush()
        return row.id

    async def _remember_incident(self, session: AsyncSession, row: IncidentRow, *, now: datetime) -> None:
        """A resolved incident becomes a past-incident document the next reports can cite."""
        subject = f"{row.owner_kind or row.object_kind} {row.namespace}/{row.owner_name or row.object_name}"
        parts = [row.summary or f"{row.reason} on {subject}", f"Reason: {row.reason}."]
        if row.root_cause:
            parts.append(f"Root cause: {row.root_cause}.")
        if row.resolution_note:
            parts.append(f"Resolution: {row.resolution_note}")
        await self._upsert_document(
            session,
            source="incident",
            slug=f"incident-{row.id}",
            title=f"{row.reason} on {subject}",
            body="\n\n".join(parts),
            reason=row.reason,
            root_cause=row.root_cause,
            incident_id=row.id,
            now=now,
        )

    async def delete_documents(self, *, source: str, keep: Iterable[str] = ()) -> int:
        """Remove ``source`` documents whose slug is not in ``keep`` (a runbook deleted from disk)."""
        keep_set = list(keep)
        async with self.sessions.begin() as session:
            statement = delete(KnowledgeRow).where(KnowledgeRow.source == source)
            if keep_set:
                statement = statement.where(KnowledgeRow.slug.not_in(keep_set))
            result = await session.execute(statement)
            return int(getattr(result, "rowcount", 0) or 0)

    async def get_document(self, *, source: str, slug: str) -> KnowledgeDocument | None:
        async with self.sessions() as session:
            query = select(KnowledgeRow).where(KnowledgeRow.source == source, KnowledgeRow.slug == slug)
            row = (await session.execute(query)).scalar_one_or_none()
            return None if row is None else _document(row)

    async def list_documents(self, *, source: str | None = None) -> list[KnowledgeDocument]:
        query = select(KnowledgeRow).order_by(KnowledgeRow.source, KnowledgeRow.slug)
        if source is not None:
            query = query.where(KnowledgeRow.source == source)
        async with self.sessions() as session:
            return [_document(row) for row in (await session.execute(query)).scalars()]

    async def find_runbooks(
        self, *, reason: str = "", root_cause: str = "", slug: str = ""
    ) -> list[KnowledgeDocument]:
        """Runbooks naming this slug, reason or root cause (user and shipped; caller ranks them)."""
        conditions = []
        if slug:
            conditions.append(KnowledgeRow.slug == slug)
        if reason:
            conditions.append(_listed(KnowledgeRow.reason, reason))
        if root_cause:
            conditions.append(_listed(KnowledgeRow.root_cause, root_cause))
        if not conditions:
            return []
        query = select(KnowledgeRow).where(KnowledgeRow.source.in_(("user", "shipped")), or_(*conditions))
        async with self.sessions() as session:
            return [_document(row) for row in (await session.execute(query)).scalars()]

    async def search_documents(
        self,
        text_: str,
        *,
        sources: Iterable[str] = (),
        exclude_incident: int | None = None,
        limit: int = 10,
    ) -> list[KnowledgeDocument]:
        """Documents sharing words with ``text_``, best first; an empty text finds nothing."""
        words = query_words(text_)
        if not words:
            return []
        wanted = list(sources)
        async with self.sessions() as session:
            if self.is_postgresql:
                tsquery = " | ".join(f"'{w}'" for w in words)
                query_sql = "to_tsquery('english', :q) || to_tsquery('simple', :q)"
                rank: Any = literal_column(f"ts_rank_cd(knowledge_documents.search, {query_sql}, 1)")
                statement = select(KnowledgeRow, rank).where(
                    text(f"knowledge_documents.search @@ ({query_sql})")
                )
                statement = statement.order_by(rank.desc(), KnowledgeRow.id)
                params: dict[str, Any] = {"q": tsquery}
            else:
                match = " OR ".join(f'"{w}"' for w in words)
                bm25: Any = literal_column("bm25(knowledge_fts, 5.0, 3.0, 3.0, 1.0)")
                statement = (
                    select(KnowledgeRow, -func.coalesce(bm25, 0.0))
                    .join(text("knowledge_fts"), text("knowledge_fts.rowid = knowledge_documents.id"))
                    .where(text("knowledge_fts MATCH :q"))
                    .order_by(bm25, KnowledgeRow.id)
                )
                params = {"q": match}
            if wanted:
                statement = statement.where(KnowledgeRow.source.in_(wanted))
            if exclude_incident is not None:
                statement = statement.where(
                    or_(KnowledgeRow.incident_id.is_(None), KnowledgeRow.incident_id != exclude_incident)
                )
            result = await session.execute(statement.limit(limit), params)
            return [_document(row, float(score or 0.0)) for row, score in result.all()]
