"""``/api/v1/events``: a server-sent events stream of incident changes.

Each stream polls the store every ``api.events_poll_interval`` for incidents whose ``version``
moved since it last looked (the orchestrator may run in another process, so polling the shared
store is the one way that sees every writer), and this process's own changes (acknowledge,
resolve) are pushed at once through ``IncidentEvents``. A comment line is sent as a heartbeat so
proxies keep the connection and the client notices a dead one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from aetherius.api import data
from aetherius.api.auth import Principal
from aetherius.api.deps import ApiContext, app_context, requires
from aetherius.api.problems import problem_responses
from aetherius.api.schemas import IncidentOut

router = APIRouter(tags=["events"], responses=problem_responses(401, 403, 429))


class IncidentEvents:
    """Fan-out of this process's own incident changes to every open stream."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[IncidentOut]] = set()

    def publish(self, incident: IncidentOut) -> None:
        for queue in list(self._queues):
            if queue.full():
                continue  # NB: the poll loop will pick the change up anyway; never block a writer.
            queue.put_nowait(incident)

    def subscribe(self) -> asyncio.Queue[IncidentOut]:
        queue: asyncio.Queue[IncidentOut] = asyncio.Queue(maxsize=256)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[IncidentOut]) -> None:
        self._queues.discard(queue)


def format_event(incident: IncidentOut) -> bytes:
    payload = orjson.dumps(incident.model_dump(mode="json"))
    return b"event: incident\nid: %d.%d\ndata: %s\n\n" % (incident.id, incident.version, payload)


async def incident_stream(
    ctx: ApiContext,
    request: Request,
    *,
    poll: float,
    heartbeat: float,
    since: datetime | None = None,
) -> AsyncIterator[bytes]:
    """Yield SSE frames until the client goes away.

    The first poll sets the baseline: it reports only incidents changed after ``since`` (the
    moment the client's page was rendered), so nothing that happened in between is missed.
    """
    events = ctx.events
    queue = events.subscribe() if events is not None else None
    seen: dict[int, int] = {}
    try:
        yield b"retry: 3000\n: connected\n\n"
        first = True
        idle = 0.0
        while True:
            for incident in await data.recent_incidents(ctx.store, limit=100):
                if seen.get(incident.id) != incident.version:
                    seen[incident.id] = incident.version
                    changed_since = (
                        since is not None and incident.updated_at is not None and incident.updated_at > since
                    )
                    if not first or changed_since:
                        yield format_event(incident)
            first = False
            waited = 0.0
            while waited < poll:
                step = min(0.25, poll - waited)
                if queue is not None and not queue.empty():
                    incident = queue.get_nowait()
                    seen[incident.id] = incident.version
                    yield format_event(incident)
                    continue
                await asyncio.sleep(step)
                waited += step
                idle += step
            if await request.is_disconnected():
                return
            if idle >= heartbeat:
                idle = 0.0
                yield b": heartbeat\n\n"
    finally:
        if events is not None and queue is not None:
            events.unsubscribe(queue)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "incident changes"}},
)
async def incident_events(
    request: Request,
    ctx: Annotated[ApiContext, Depends(app_context)],
    _: Annotated[Principal, Depends(requires("viewer"))],
    since: Annotated[
        datetime | None, Query(description="also report changes after this moment (RFC 3339)")
    ] = None,
) -> StreamingResponse:
    """``event: incident`` frames (JSON incident) whenever an incident changes; heartbeats as comments."""
    api = ctx.settings.api
    stream = incident_stream(
        ctx,
        request,
        poll=api.events_poll_interval.total_seconds(),
        heartbeat=api.events_heartbeat.total_seconds(),
        since=since if since is None or since.tzinfo is not None else since.replace(tzinfo=UTC),
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
