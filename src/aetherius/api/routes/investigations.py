"""Investigations of an incident by the Reasoning Service: start one, read it, ask a follow-up,
and follow its progress live (server-sent events).

Starting one costs tokens, so it takes an operator; reading takes a viewer. An investigation runs
in the background: the POST answers 202 with it running (or already ended, when the cluster's
daily budget is spent), and its answer becomes a report version of the incident.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from aetherius.api import data
from aetherius.api.auth import Principal
from aetherius.api.deps import ApiContext, app_context, requires
from aetherius.api.events import _access_ended
from aetherius.api.limits import retry_after_header
from aetherius.api.problems import Problem, problem_responses
from aetherius.api.schemas import (
    FollowUpIn,
    InvestigationId,
    InvestigationIn,
    InvestigationOut,
    RowId,
)
from aetherius.reasoning.service import Investigations, ReasoningUnavailable
from aetherius.store import InvestigationRecord, Store

router = APIRouter(
    prefix="/incidents/{incident_id}/investigations",
    tags=["investigations"],
    responses=problem_responses(401, 403, 429),
)
Ctx = Annotated[ApiContext, Depends(app_context)]
Viewer = Annotated[Principal, Depends(requires("viewer"))]
Operator = Annotated[Principal, Depends(requires("operator"))]


def _service(ctx: ApiContext) -> Investigations:
    service = ctx.investigations
    if service is None or not service.available:
        why = service.why_unavailable() if service is not None else "reasoning is not part of this process"
        raise Problem(409, why, kind="reasoning-unavailable", title="Reasoning unavailable")
    return service


def out(record: InvestigationRecord) -> InvestigationOut:
    answer = record.answer or None
    return InvestigationOut.model_validate(
        {
            **{k: getattr(record, k) for k in InvestigationOut.model_fields if k not in ("answer",)},
            "answer": answer,
        }
    )


async def _owned(store: Store, incident_id: int, investigation_id: str) -> InvestigationRecord:
    with data.store_errors():
        record = await store.get_investigation(investigation_id)
    if record.incident_id != incident_id:
        raise Problem(404, f"incident {incident_id} has no investigation {investigation_id}")
    return record


@router.post("", status_code=202, responses=problem_responses(404, 409, 422, 503))
async def start_investigation(
    incident_id: RowId, body: InvestigationIn, ctx: Ctx, who: Operator
) -> InvestigationOut:
    """Investigate the incident (409 when reasoning is off or not configured).

    Answers at once: ``status: running`` (follow ``…/events``), or ``done`` with
    ``ending: daily-budget`` when the cluster spent its tokens today.
    """
    service = _service(ctx)
    try:
        with data.store_errors():
            record = await service.start(incident_id, requested_by=who.name, question=body.question)
    except ReasoningUnavailable as exc:
        raise Problem(409, str(exc), kind="reasoning-unavailable", title="Reasoning unavailable") from None
    return out(record)


@router.get("", responses=problem_responses(404, 503))
async def list_investigations(incident_id: RowId, ctx: Ctx, _: Viewer) -> list[InvestigationOut]:
    """The incident's investigations, newest first."""
    with data.store_errors():
        await ctx.store.get_incident(incident_id)
        return [out(r) for r in await ctx.store.list_investigations(incident_id)]


@router.get("/{investigation_id}", responses=problem_responses(404, 503))
async def get_investigation(
    incident_id: RowId, investigation_id: InvestigationId, ctx: Ctx, _: Viewer
) -> InvestigationOut:
    """Status, the latest answer with its evidence marks, tokens, cost and ending."""
    return out(await _owned(ctx.store, incident_id, investigation_id))


@router.post("/{investigation_id}/messages", status_code=202, responses=problem_responses(404, 409, 422, 503))
async def ask_follow_up(
    incident_id: RowId, investigation_id: InvestigationId, body: FollowUpIn, ctx: Ctx, _: Operator
) -> InvestigationOut:
    """A follow-up question in the investigation's conversation (409 while a turn is running)."""
    service = _service(ctx)
    await _owned(ctx.store, incident_id, investigation_id)
    try:
        with data.store_errors():
            record = await service.follow_up(investigation_id, question=body.question)
    except ReasoningUnavailable as exc:
        raise Problem(409, str(exc), kind="reasoning-unavailable", title="Reasoning unavailable") from None
    return out(record)


def _frame(event: str, payload: object, ident: str = "") -> bytes:
    head = f"event: {event}\n" + (f"id: {ident}\n" if ident else "")
    return head.encode() + b"data: " + orjson.dumps(payload) + b"\n\n"


async def _progress_stream(
    ctx: ApiContext, request: Request, principal: Principal, record: InvestigationRecord
) -> AsyncIterator[bytes]:
    """Frames until the client leaves or its access ends: each new progress event, and the whole
    investigation whenever it changes (``status: done`` carries the answer).

    NB: read from the store, like the incident events, so a stream on any replica sees an
    investigation run by another.
    """
    api = ctx.settings.api
    poll = api.events_poll_interval.total_seconds()
    heartbeat = api.events_heartbeat.total_seconds()
    loop = asyncio.get_running_loop()
    open_streams = _open_streams(ctx)
    open_streams[principal.token_id] = open_streams.get(principal.token_id, 0) + 1
    try:
        async for frame in _frames(
            ctx, request, principal, record, poll=poll, heartbeat=heartbeat, loop=loop
        ):
            yield frame
    finally:
        open_streams[principal.token_id] -= 1
        if open_streams[principal.token_id] <= 0:
            del open_streams[principal.token_id]


def _open_streams(ctx: ApiContext) -> dict[str, int]:
    """Open investigation streams per token (each polls the store: capped like the incident events)."""
    streams: dict[str, int] = ctx.extra.setdefault("investigation_streams", {})
    return streams


async def _frames(
    ctx: ApiContext,
    request: Request,
    principal: Principal,
    record: InvestigationRecord,
    *,
    poll: float,
    heartbeat: float,
    loop: asyncio.AbstractEventLoop,
) -> AsyncIterator[bytes]:
    sent_progress, sent_at, quiet_since, checked_at = 0, None, loop.time(), loop.time()
    yield b"retry: 3000\n: connected\n\n"
    while True:
        if record.updated_at != sent_at:
            for event in record.progress:
                if int(event.get("n", 0)) > sent_progress:
                    yield _frame("progress", event)
            sent_progress = max([sent_progress, *(int(e.get("n", 0)) for e in record.progress)])
            sent_at = record.updated_at
            yield _frame("investigation", out(record).model_dump(mode="json"), f"{record.id}.{sent_progress}")
            quiet_since = loop.time()
        await asyncio.sleep(poll)
        now = loop.time()
        if now - checked_at >= max(poll, 1.0):
            checked_at = now
            if await _access_ended(ctx, principal) is not None or await request.is_disconnected():
                return
        if now - quiet_since >= heartbeat:
            quiet_since = now
            yield b": heartbeat\n\n"
        try:
            record = await ctx.store.get_investigation(record.id)
        except Exception:  # NB: a store outage must not end the stream; the next poll retries
            continue


@router.get(
    "/{investigation_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "investigation progress"},
        **problem_responses(404, 429, 503),
    },
)
async def investigation_events(
    incident_id: RowId, investigation_id: InvestigationId, request: Request, ctx: Ctx, who: Viewer
) -> StreamingResponse:
    """``event: progress`` frames (a model step, a tool read, a question, done) and ``event:
    investigation`` frames (the investigation as ``GET`` gives it) whenever it changes."""
    record = await _owned(ctx.store, incident_id, investigation_id)
    cap = ctx.settings.api.max_streams_per_token
    if _open_streams(ctx).get(who.token_id, 0) >= cap:
        raise Problem(
            429,
            f"this token has {cap} investigation streams open, the most allowed (api.max_streams_per_token)",
            headers=retry_after_header(5),
        )
    return StreamingResponse(
        _progress_stream(ctx, request, who, record),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
