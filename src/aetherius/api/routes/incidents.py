"""Incidents: the list a person triages, one incident's full story, and acting on it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from aetherius.api import data
from aetherius.api.auth import Principal
from aetherius.api.deps import ApiContext, app_context, requires
from aetherius.api.problems import Problem, problem_responses
from aetherius.api.query import query_model
from aetherius.api.schemas import (
    IncidentDetail,
    IncidentOut,
    IncidentPage,
    IncidentQuery,
    NoteIn,
    RediagnoseAccepted,
    RowId,
)
from aetherius.bus.base import BusUnavailable

router = APIRouter(prefix="/incidents", tags=["incidents"], responses=problem_responses(401, 403, 429))
Ctx = Annotated[ApiContext, Depends(app_context)]
Viewer = Annotated[Principal, Depends(requires("viewer"))]
Operator = Annotated[Principal, Depends(requires("operator"))]


ListQuery, LIST_QUERY_DOCS = query_model(IncidentQuery)


@router.get(
    "", response_model=IncidentPage, responses=problem_responses(400, 422), openapi_extra=LIST_QUERY_DOCS
)
async def list_incidents(
    ctx: Ctx, _: Viewer, query: Annotated[IncidentQuery, Depends(ListQuery)]
) -> Response:
    """Newest first (by last seen), filtered; follow ``next_cursor`` for older ones."""
    body = await data.list_incidents_json(
        ctx.store,
        cluster=query.cluster,
        namespace=query.namespace,
        severity=query.severity,
        state=query.state,
        reason=query.reason,
        text=query.q,
        cursor=query.cursor,
        limit=query.limit,
    )
    return Response(content=body, media_type="application/json")


@router.get("/{incident_id}", responses=problem_responses(404))
async def get_incident(incident_id: RowId, ctx: Ctx, _: Viewer) -> IncidentDetail:
    """The incident with every report version, its Signals timeline and the audit trail."""
    detail = await data.incident_detail(ctx.store, incident_id)
    if detail is None:
        raise Problem(404, f"no incident {incident_id}")
    return detail


@router.post("/{incident_id}/acknowledge", responses=problem_responses(404, 409, 422))
async def acknowledge_incident(incident_id: RowId, body: NoteIn, ctx: Ctx, who: Operator) -> IncidentOut:
    changed = await data.acknowledge(ctx.store, incident_id, note=body.note, by=who.name)
    if ctx.events is not None:
        ctx.events.publish(changed)
    return changed


@router.post("/{incident_id}/resolve", responses=problem_responses(404, 409, 422))
async def resolve_incident(incident_id: RowId, body: NoteIn, ctx: Ctx, who: Operator) -> IncidentOut:
    """Resolve with a note; the note is kept with the incident and feeds the knowledge base."""
    changed = await data.resolve(ctx.store, incident_id, note=body.note, by=who.name)
    if ctx.events is not None:
        ctx.events.publish(changed)
    return changed


@router.post("/{incident_id}/rediagnose", status_code=202, responses=problem_responses(404, 503))
async def rediagnose_incident(incident_id: RowId, ctx: Ctx, who: Operator) -> RediagnoseAccepted:
    """Ask the orchestrator to diagnose again, bypassing its cooldown.

    The request travels as a Signal on the bus (``source="api"``, ``reason="RediagnoseRequested"``,
    label ``aetherius.io/rediagnose=<incident id>``) so whichever orchestrator replica pulls it does
    the work, exactly as for any other Signal.
    """
    incident = await data.get_incident(ctx.store, incident_id)
    if incident is None:
        raise Problem(404, f"no incident {incident_id}")
    signal = data.rediagnose_signal(incident, requested_by=who.name)
    try:
        await ctx.bus.publish([signal])
    except BusUnavailable as exc:
        raise Problem(
            503, f"the message bus is unavailable ({exc}); retry later", headers={"Retry-After": "5"}
        ) from None
    return RediagnoseAccepted(incident_id=incident_id, msg_id=signal.msg_id)
