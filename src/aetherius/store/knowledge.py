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

from sqlalchemy import Float, column, delete, func, literal, literal_column, or_, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from aetherius.store.base import StoreBase, to_record
from aetherius.store.models import IncidentRow, KnowledgeRow
from aetherius.store.records import KnowledgeDocument

_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
MAX_QUERY_WORDS = 40
# Words too common to tell documents apart. PostgreSQL's english configuration drops these on its
# own; SQLite's FTS5 keeps every token, and "the" would otherwise match every runbook.
_STOP_WORDS = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    )
)


def query_words(text_: str) -> list[str]:
    """Distinct lower-case words of a text, in order, bounded (the FTS query is OR of these)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text_.lower()):
        if word in _STOP_WORDS:
            continue
        seen.setdefault(word, None)
        if len(seen) >= MAX_QUERY_WORDS:
            break
    return list(seen)


def _listed(column: Any, value: str) -> Any:
    """``value`` is one of the space-separated values in ``column``."""
    return (literal(" ") + column + literal(" ")).like(f"% {value} %")


def _document(row: KnowledgeRow, score: float = 0.0) -> KnowledgeDocument:
    return to_record(KnowledgeDocument, row, score=score)


_RESOLUTION = "Resolution: "


def resolution_of(body: str) -> str:
    """The note a past-incident document's incident was resolved with, or "" (see
    ``_remember_incident``, which writes it as the body's "Resolution: …" paragraph)."""
    for part in body.split("\n\n"):
        if part.startswith(_RESOLUTION):
            return part.removeprefix(_RESOLUTION).strip()
    return ""


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
            parts.append(f"{_RESOLUTION}{row.resolution_note}")
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
        """Documents sharing words with ``text_``, best first; a text without words finds nothing.

        Whatever a person typed (quotes, ``AND``, ``*``, ``NEAR(``…) only ever contributes its
        words, each quoted as a literal term, so no input is query syntax to either database.
        """
        words = query_words(text_)
        if not words or limit <= 0:
            return []
        statement = _postgresql_search(words) if self.is_postgresql else _sqlite_search(words)
        wanted = list(sources)
        if wanted:
            statement = statement.where(KnowledgeRow.source.in_(wanted))
        if exclude_incident is not None:
            statement = statement.where(
                or_(KnowledgeRow.incident_id.is_(None), KnowledgeRow.incident_id != exclude_incident)
            )
        async with self.sessions() as session:
            result = await session.execute(statement.limit(limit))
            return [
                KnowledgeDocument(
                    **{name: row[name] for name in _DOCUMENT_FIELDS}, score=float(row.score or 0.0)
                )
                for row in result.mappings()
            ]


_DOCUMENT_FIELDS = (
    "id",
    "source",
    "slug",
    "title",
    "reason",
    "root_cause",
    "body",
    "incident_id",
    "updated_at",
)
_DOCUMENTS = KnowledgeRow.__table__
# SQLite's FTS5 index over (title, reason, root_cause, body), created by the migration. NB: the
# hidden column named like the table is what ``MATCH`` and ``bm25`` take.
_FTS = table("knowledge_fts", column("rowid"))
_FTS_TABLE: Any = literal_column("knowledge_fts")
# bm25 column weights, in the FTS table's column order: a word in the title or the reason/root
# cause tells more than one in the body.
_BM25_WEIGHTS = (5.0, 3.0, 3.0, 1.0)
# PostgreSQL's generated tsvector column (migration 0001); no ORM attribute, it is never read.
_PG_SEARCH: Any = literal_column("knowledge_documents.search")


def _columns() -> list[Any]:
    return [_DOCUMENTS.c[name] for name in _DOCUMENT_FIELDS]


def _sqlite_search(words: list[str]) -> Any:
    """FTS5: an OR of quoted terms (a quoted term is never an operator), ranked by ``bm25``."""
    match = " OR ".join(f'"{word}"' for word in words)
    bm25: Any = func.bm25(_FTS_TABLE, *(literal(w, Float) for w in _BM25_WEIGHTS))
    return (
        select(*_columns(), (-bm25).label("score"))
        .select_from(_FTS.join(_DOCUMENTS, _DOCUMENTS.c.id == _FTS.c.rowid))
        .where(_FTS_TABLE.op("MATCH")(match))
        .order_by(bm25, _DOCUMENTS.c.id)
    )


def _postgresql_search(words: list[str]) -> Any:
    """tsvector + GIN: the words stemmed (english) or as they are (simple: reasons, root causes)."""
    terms = " | ".join(f"'{word}'" for word in words)
    query: Any = func.to_tsquery("english", terms).op("||")(func.to_tsquery("simple", terms))
    rank: Any = func.ts_rank_cd(_PG_SEARCH, query, 1)
    return (
        select(*_columns(), rank.label("score"))
        .where(_PG_SEARCH.op("@@")(query))
        .order_by(rank.desc(), _DOCUMENTS.c.id)
    )
