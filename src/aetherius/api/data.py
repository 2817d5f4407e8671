"""The API's one door to the store: every store call a route makes goes through here.

It turns store records into the API's schemas and store errors (not found, invalid transition,
bad cursor) into problem documents, so routes stay a few lines each and the store's Python API
can evolve behind one module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import msgspec

from aetherius.api.auth import ROLES, Role
from aetherius.api.cluster_status import cluster_out
from aetherius.api.problems import Problem
from aetherius.api.schemas import (
    AuditOut,
    ClusterDetail,
    IncidentDetail,
    IncidentOut,
    IncidentPage,
    KnowledgeHit,
    ReportOut,
    RunbookOut,
    SignalOut,
    SinkOut,
    TokenCreated,
    TokenOut,
)
from aetherius.config import Settings
from aetherius.signals import ObjectRef, Signal, dedup_key
from aetherius.store import Store
from aetherius.store.engine import InvalidCursor, InvalidInput, InvalidTransition, NotFound, StoreUnavailable
from aetherius.store.knowledge import query_words, resolution_of
from aetherius.store.records import IncidentFilters, IncidentRows

TIMELINE_LIMIT = 500
AUDIT_LIMIT = 500


@contextmanager
def store_errors() -> Iterator[None]:
    """Store exceptions as the problem a caller can act on."""
    try:
        yield
    except NotFound as exc:
        raise Problem(404, str(exc)) from None
    except InvalidTransition as exc:
        raise Problem(409, str(exc)) from None
    except InvalidCursor as exc:
        raise Problem(400, str(exc), kind="invalid-cursor") from None
    except InvalidInput as exc:
        raise Problem(422, str(exc)) from None
    except StoreUnavailable as exc:
        raise Problem(503, f"the store is unavailable: {exc}", headers={"Retry-After": "5"}) from None


async def list_clusters(store: Store) -> list[Any]:
    with store_errors():
        return list(await store.list_clusters())


async def cluster_detail(store: Store, cluster_id: str) -> ClusterDetail | None:
    try:
        cluster = await store.get_cluster(cluster_id)
    except NotFound:
        return None
    with store_errors():
        page = await store.list_incidents(IncidentFilters(cluster_id=cluster_id, unresolved=True), limit=500)
        last = await store.last_signal(cluster_id)
    return ClusterDetail(
        **cluster_out(cluster).model_dump(),
        open_incidents=len(page.items),
        last_signal=SignalOut.model_validate(last) if last is not None else None,
    )


def _filters(
    *,
    cluster: str | None,
    namespace: str | None,
    severity: str | None,
    state: Any,
    reason: str | None,
    text: str | None,
) -> IncidentFilters:
    return IncidentFilters(
        cluster_id=cluster or None,
        namespace=namespace,
        severity=severity,
        state=None if state == "unresolved" else state,
        unresolved=state == "unresolved",
        reason=reason or None,
        text=text or None,
    )


async def list_incidents(
    store: Store,
    *,
    cluster: str | None = None,
    namespace: str | None = None,
    severity: str | None = None,
    state: Any = None,
    reason: str | None = None,
    text: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> IncidentPage:
    filters = _filters(
        cluster=cluster, namespace=namespace, severity=severity, state=state, reason=reason, text=text
    )
    with store_errors():
        page = await store.list_incidents(filters, cursor=cursor or None, limit=limit)
    return IncidentPage(
        items=[IncidentOut.model_validate(i) for i in page.items], next_cursor=page.next_cursor
    )


_INCIDENT_OUT_FIELDS = tuple(IncidentOut.model_fields)
# NB: the list is the API's hottest route; 50 pydantic models per request (or even 50 dicts for
# orjson) cost more than the query. A msgspec Struct of ``IncidentOut``'s fields, filled
# positionally from the store's rows, encodes straight to bytes (UTC datetimes as ``Z``, like
# pydantic), and ``affected_objects`` passes through as the database's JSON text; a test checks
# the output equals the model's on both stores.
_IncidentItem = msgspec.defstruct("_IncidentItem", list(_INCIDENT_OUT_FIELDS))
_AFFECTED = _INCIDENT_OUT_FIELDS.index("affected_objects")


class _Page(msgspec.Struct):
    items: list[msgspec.Struct]
    next_cursor: str | None


_ENCODER = msgspec.json.Encoder()


def incident_page_json(page: IncidentRows) -> bytes:
    """``IncidentPage`` as JSON bytes from the store's rows of ``IncidentOut``'s fields, JSON as text."""
    if page.columns != _INCIDENT_OUT_FIELDS:
        raise ValueError(f"rows of {page.columns} are not IncidentOut's fields")
    items = []
    for row in page.rows:
        item = _IncidentItem(*row)
        item.affected_objects = msgspec.Raw(row[_AFFECTED])  # type: ignore[attr-defined]
        items.append(item)
    return _ENCODER.encode(_Page(items=items, next_cursor=page.next_cursor))


async def list_incidents_json(
    store: Store,
    *,
    cluster: str | None = None,
    namespace: str | None = None,
    severity: str | None = None,
    state: Any = None,
    reason: str | None = None,
    text: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> bytes:
    """The page ``list_incidents`` describes, serialized (see ``incident_page_json``)."""
    filters = _filters(
        cluster=cluster, namespace=namespace, severity=severity, state=state, reason=reason, text=text
    )
    with store_errors():
        page = await store.list_incident_rows(
            filters, columns=_INCIDENT_OUT_FIELDS, cursor=cursor or None, limit=limit, json_text=True
        )
    return incident_page_json(page)


async def recent_incidents(store: Store, *, limit: int) -> list[IncidentOut]:
    with store_errors():
        page = await store.list_incidents(IncidentFilters(), limit=limit)
    return [IncidentOut.model_validate(i) for i in page.items]


async def get_incident(store: Store, incident_id: int) -> IncidentOut | None:
    try:
        incident = await store.get_incident(incident_id)
    except NotFound:
        return None
    return IncidentOut.model_validate(incident)


async def incident_detail(store: Store, incident_id: int) -> IncidentDetail | None:
    try:
        story = await store.incident_story(incident_id, signals_limit=TIMELINE_LIMIT, audit_limit=AUDIT_LIMIT)
    except NotFound:
        return None
    except StoreUnavailable as exc:
        raise Problem(503, f"the store is unavailable: {exc}", headers={"Retry-After": "5"}) from None
    upstream = None
    with store_errors():
        if story.incident.upstream_id is not None:
            try:
                upstream = IncidentOut.model_validate(await store.get_incident(story.incident.upstream_id))
            except NotFound:
                upstream = None  # pruned by retention since
        downstream = await store.downstream_incidents(incident_id)
    return IncidentDetail(
        incident=IncidentOut.model_validate(story.incident),
        reports=[ReportOut.model_validate(r) for r in story.reports],
        signals=[SignalOut.model_validate(s) for s in story.signals],
        audit=[AuditOut.model_validate(a) for a in story.audit],
        upstream=upstream,
        downstream=[IncidentOut.model_validate(i) for i in downstream],
    )


async def acknowledge(store: Store, incident_id: int, *, note: str, by: str) -> IncidentOut:
    with store_errors():
        return IncidentOut.model_validate(await store.acknowledge_incident(incident_id, by=by, note=note))


async def resolve(store: Store, incident_id: int, *, note: str, by: str) -> IncidentOut:
    with store_errors():
        return IncidentOut.model_validate(await store.resolve_incident(incident_id, by=by, note=note))


def rediagnose_signal(incident: IncidentOut, *, requested_by: str) -> Signal:
    """The bus message asking the orchestrator to diagnose ``incident`` again (see the route)."""
    now = time.time()
    owner = (
        ObjectRef(kind=incident.owner_kind, name=incident.owner_name, namespace=incident.namespace)
        if incident.owner_kind and incident.owner_name
        else None
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return Signal(
        cluster_id=incident.cluster_id,
        source="api",
        object=ObjectRef(kind=incident.object_kind, name=incident.object_name, namespace=incident.namespace),
        owner=owner,
        reason="RediagnoseRequested",
        message=f"re-diagnosis of incident {incident.id} requested by {requested_by}",
        severity=incident.severity,
        dedup_key=dedup_key("rediagnose", str(incident.id)),
        occurrence=int(now * 1000),
        first_seen=stamp,
        last_seen=stamp,
        labels={"aetherius.io/rediagnose": str(incident.id), "aetherius.io/requested-by": requested_by},
    )


async def search_knowledge(store: Store, query: str, *, limit: int) -> list[KnowledgeHit]:
    """Runbooks and past incidents ranked by the store's full-text search (FTS5 / tsvector)."""
    with store_errors():
        documents = await store.search_documents(query, limit=limit)
    words = query_words(query)
    return [
        KnowledgeHit(
            id=d.id,
            source=d.source,
            slug=d.slug,
            title=d.title,
            reason=d.reason,
            root_cause=d.root_cause,
            snippet=_snippet(d.body, words),
            incident_id=d.incident_id,
            resolution=resolution_of(d.body) if d.incident_id is not None else "",
        )
        for d in documents
    ]


def _snippet(body: str, words: list[str], *, width: int = 220) -> str:
    flat = " ".join(body.split())
    lowered = flat.lower()
    at = min((i for i in (lowered.find(w) for w in words) if i >= 0), default=0)
    start = max(0, at - width // 3)
    text = flat[start : start + width]
    return ("…" if start else "") + text + ("…" if start + width < len(flat) else "")


@dataclass(frozen=True)
class _Runbook:
    slug: str
    title: str
    markdown: str


@cache
def _runbooks() -> tuple[_Runbook, ...]:
    try:
        folder = resources.files("aetherius.diagnosis") / "runbooks"
        entries = sorted((e for e in folder.iterdir() if e.name.endswith(".md")), key=lambda e: e.name)
    except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError):
        return ()
    found: list[_Runbook] = []
    for entry in entries:
        text = entry.read_text(encoding="utf-8")
        slug = entry.name.removesuffix(".md")
        title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), slug)
        found.append(_Runbook(slug=slug, title=title, markdown=text))
    return tuple(found)


def runbooks() -> tuple[_Runbook, ...]:
    """The runbooks shipped with the diagnosis engine (``aetherius/diagnosis/runbooks/*.md``)."""
    return _runbooks()


def runbook(slug: str) -> RunbookOut | None:
    for item in _runbooks():
        if item.slug == slug:
            return RunbookOut(slug=item.slug, title=item.title, markdown=item.markdown)
    return None


def _token_out(token: Any) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        role=token.role,
        prefix=token.prefix,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


async def list_tokens(store: Store) -> list[TokenOut]:
    with store_errors():
        return [_token_out(t) for t in await store.list_tokens()]


async def create_token(store: Store, *, name: str, role: str) -> TokenCreated:
    with store_errors():
        created = await store.create_token(name=name, role=_role(role))
    return TokenCreated(**_token_out(created.token).model_dump(), token=created.secret)


def _role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise Problem(422, f"role must be one of {', '.join(ROLES)}")


async def revoke_token(store: Store, token_id: int) -> bool:
    """Revoke; False when no such token exists or it was already revoked."""
    try:
        current = {t.id: t for t in await store.list_tokens()}.get(token_id)
        if current is None or current.revoked_at is not None:
            return False
        await store.revoke_token(token_id)
    except NotFound:
        return False
    return True


def sinks(settings: Settings) -> list[SinkOut]:
    """The configured notification sinks, with their URLs stripped to scheme and host."""
    out: list[SinkOut] = []
    for sink in settings.notifications.sinks:
        parts = urlsplit(str(sink.url))
        out.append(SinkOut(name=sink.name, kind=sink.type, target=f"{parts.scheme}://{parts.hostname or ''}"))
    return out
