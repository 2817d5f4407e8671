"""Retrieval: the runbook for a failure and the past incidents most like it.

``KnowledgeRetriever`` is the interface a report builder uses; ``StoreRetriever`` answers it
from the store's full-text search (FTS5 on SQLite, tsvector on PostgreSQL). A vector database
(Weaviate…) would implement the same three methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aetherius.store import KnowledgeDocument, NotFound, Store

# Ranking of runbook candidates: the user's own beat the shipped ones, then the most specific match.
_USER_BONUS, _SLUG_MATCH, _ROOT_CAUSE_MATCH, _REASON_MATCH = 16, 8, 4, 2


@dataclass(frozen=True, slots=True, kw_only=True)
class RunbookRef:
    slug: str
    title: str
    source: str  # shipped | user
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SimilarIncident:
    incident_id: int
    title: str
    reason: str
    root_cause: str
    resolution: str
    score: float


class KnowledgeRetriever(Protocol):
    async def runbook_for(self, *, reason: str, root_cause: str, slug: str = "") -> RunbookRef | None: ...

    async def similar_incidents(
        self, *, text: str, reason: str, root_cause: str, exclude_incident: int | None = None, limit: int = 3
    ) -> list[SimilarIncident]: ...

    async def search(self, text: str, *, limit: int = 10) -> list[KnowledgeDocument]: ...


def _listed(values: str, wanted: str) -> bool:
    return bool(wanted) and wanted in values.split()


class StoreRetriever:
    """``KnowledgeRetriever`` over the store's knowledge documents."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def runbook_for(self, *, reason: str, root_cause: str, slug: str = "") -> RunbookRef | None:
        candidates = await self._store.find_runbooks(reason=reason, root_cause=root_cause, slug=slug)

        def rank(doc: KnowledgeDocument) -> tuple[int, str]:
            score = _USER_BONUS if doc.source == "user" else 0
            score += _SLUG_MATCH if slug and doc.slug == slug else 0
            score += _ROOT_CAUSE_MATCH if _listed(doc.root_cause, root_cause) else 0
            score += _REASON_MATCH if _listed(doc.reason, reason) else 0
            return (-score, doc.slug)

        if not candidates:
            return None
        best = min(candidates, key=rank)
        return RunbookRef(slug=best.slug, title=best.title, source=best.source, body=best.body)

    async def similar_incidents(
        self, *, text: str, reason: str, root_cause: str, exclude_incident: int | None = None, limit: int = 3
    ) -> list[SimilarIncident]:
        """Past (resolved) incidents sharing words with ``text``, same root cause or reason first.

        A candidate that shares neither reason nor root cause is not "similar", however many
        words it shares (every incident text says "pod" and "container").
        """
        if limit <= 0:
            return []
        query = " ".join(part for part in (text, reason, root_cause) if part)
        found = await self._store.search_documents(
            query, sources=("incident",), exclude_incident=exclude_incident, limit=max(20, limit * 5)
        )
        scored: list[tuple[float, KnowledgeDocument]] = []
        for doc in found:
            same_cause = _listed(doc.root_cause, root_cause)
            same_reason = _listed(doc.reason, reason)
            if (reason or root_cause) and not (same_cause or same_reason):
                continue
            scored.append((doc.score + (2.0 if same_cause else 0.0) + (1.0 if same_reason else 0.0), doc))
        scored.sort(key=lambda pair: (-pair[0], -(pair[1].incident_id or 0)))
        similar: list[SimilarIncident] = []
        for score, doc in scored[:limit]:
            if doc.incident_id is None:
                continue
            try:
                incident = await self._store.get_incident(doc.incident_id)
            except NotFound:
                continue
            similar.append(
                SimilarIncident(
                    incident_id=incident.id,
                    title=doc.title,
                    reason=incident.reason,
                    root_cause=incident.root_cause,
                    resolution=incident.resolution_note,
                    score=round(score, 4),
                )
            )
        return similar

    async def search(self, text: str, *, limit: int = 10) -> list[KnowledgeDocument]:
        return await self._store.search_documents(text, limit=limit)
