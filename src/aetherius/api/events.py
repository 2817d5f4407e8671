"""``/api/v1/events``: a server-sent events stream of incident changes.

One poller per process reads the store every ``api.events_poll_interval`` for incidents whose
``version`` moved (the orchestrator may run in another process, so polling the shared store is
the one way that sees every writer) and fans the changes out to every open stream; this process's
own changes (acknowledge, resolve) are pushed at once the same way. A thousand dashboards cost one
query a second, not a thousand.

A stream belongs to a token: at most ``api.max_streams_per_token`` at once, it ends when the token
is revoked (at once when revoked here, within the authority's cache time when elsewhere) or its
session is logged out, and each change reaches it once, whichever way it came. A comment line is
sent as a heartbeat so proxies keep the connection and the client notices a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from prometheus_client import Counter, Gauge

from aetherius.api import data
from aetherius.api.auth import Principal
from aetherius.api.deps import ApiContext, app_context, requires
from aetherius.api.limits import retry_after_header
from aetherius.api.problems import Problem, problem_responses
from aetherius.api.schemas import IncidentOut
from aetherius.logs import get_logger

log = get_logger(__name__)

router = APIRouter(tags=["events"], responses=problem_responses(401, 403, 429))

STREAMS = Gauge("aetherius_api_event_streams", "Open server-sent event streams")
STREAMS_ENDED = Counter(
    "aetherius_api_event_streams_ended_total",
    "Event streams ended by the server, by why (revoked, logged_out, refused: over the per-token cap)",
    ["why"],
)
_CLOSE = object()  # put in a stream's queue: the stream ends


# A change stamped by another process's clock up to this much behind ours is still news.
_CLOCK_MARGIN = timedelta(seconds=1)


@dataclass(eq=False)
class _Stream:
    token_id: str
    queue: asyncio.Queue[object] = field(default_factory=lambda: asyncio.Queue(maxsize=256))


class TooManyStreams(Exception):
    """The token already has its allowance of open streams."""


class IncidentEvents:
    """The process's one store poller and the fan-out of incident changes to every open stream."""

    def __init__(
        self,
        *,
        poll: float = 1.0,
        max_per_token: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.poll = poll
        self.max_per_token = max_per_token
        self.clock = clock
        self._streams: set[_Stream] = set()
        self._poller: asyncio.Task[None] | None = None
        self._versions: dict[int, int] = {}
        self.polls = 0  # store reads made by the poller, for tests and metrics

    def publish(self, incident: IncidentOut) -> None:
        """Hand one change to every stream (never blocks a writer)."""
        self._versions[incident.id] = max(self._versions.get(incident.id, 0), incident.version)
        for stream in list(self._streams):
            if not stream.queue.full():  # NB: a stream that fell behind catches up on reconnect
                stream.queue.put_nowait(incident)

    def open_for(self, token_id: str) -> int:
        return sum(1 for s in self._streams if s.token_id == token_id)

    def subscribe(self, token_id: str, *, ctx: ApiContext) -> _Stream:
        if self.open_for(token_id) >= self.max_per_token:
            STREAMS_ENDED.labels(why="refused").inc()
            raise TooManyStreams
        stream = _Stream(token_id=token_id)
        self._streams.add(stream)
        STREAMS.inc()
        if self._poller is None or self._poller.done():
            started = self.clock() - _CLOCK_MARGIN
            self._poller = asyncio.create_task(self._poll(ctx, started=started), name="incident-events")
        return stream

    def unsubscribe(self, stream: _Stream) -> None:
        if stream in self._streams:
            self._streams.discard(stream)
            STREAMS.dec()

    def close_token(self, token_id: str) -> int:
        """End every open stream of a token (it was revoked); how many were open."""
        ended = [s for s in self._streams if s.token_id == token_id]
        for stream in ended:
            with contextlib.suppress(asyncio.QueueFull):
                stream.queue.put_nowait(_CLOSE)
        return len(ended)

    async def _poll(self, ctx: ApiContext, *, started: datetime) -> None:
        """Read the store while anyone listens; stop when the last stream has gone.

        The first read is the baseline: what exists is not news, except what changed after the
        poller ``started``. NB: the stream that started it replays the changes since its page was
        rendered, but only up to its own read; a change between that read and this one would
        otherwise be in neither.
        """
        first = True
        while self._streams:
            try:
                recent = await data.recent_incidents(ctx.store, limit=100)
            except Exception as exc:  # NB: a store outage must not end the poller; said, retried
                log.warning("incident events poll failed", error=str(exc))
                recent = []
            self.polls += 1
            for incident in recent:
                if self._versions.get(incident.id, 0) < incident.version:
                    fresh = incident.updated_at is not None and incident.updated_at > started
                    if first and not fresh:  # the baseline: what exists now is not news
                        self._versions[incident.id] = incident.version
                    else:
                        self.publish(incident)
            first = False
            await asyncio.sleep(self.poll)
        self._poller = None


def format_event(incident: IncidentOut) -> bytes:
    payload = orjson.dumps(incident.model_dump(mode="json"))
    return b"event: incident\nid: %d.%d\ndata: %s\n\n" % (incident.id, incident.version, payload)


async def incident_stream(
    ctx: ApiContext,
    request: Request,
    *,
    principal: Principal,
    heartbeat: float,
    recheck: float,
    since: datetime | None = None,
    cluster: str | None = None,
) -> AsyncIterator[bytes]:
    """Yield SSE frames until the client goes away or its access ends.

    With ``since`` (the moment the client's page was rendered), the changes after it are sent
    first, so nothing that happened in between is missed. With ``cluster``, only that cluster's
    incidents (a dashboard filtered to one cluster hears of no other).
    """
    assert ctx.events is not None
    try:
        stream = ctx.events.subscribe(principal.token_id, ctx=ctx)
    except TooManyStreams:
        return
    seen: dict[int, int] = {}
    try:
        yield b"retry: 3000\n: connected\n\n"
        if since is not None:
            for incident in await data.recent_incidents(ctx.store, limit=100):
                if cluster is not None and incident.cluster_id != cluster:
                    continue
                if incident.updated_at is not None and incident.updated_at > since:
                    seen[incident.id] = incident.version
                    yield format_event(incident)
        loop = asyncio.get_running_loop()
        quiet_since = checked_at = loop.time()
        while True:
            try:
                item = await asyncio.wait_for(stream.queue.get(), timeout=min(heartbeat, recheck))
            except TimeoutError:
                item = None
            if item is _CLOSE:
                STREAMS_ENDED.labels(why="revoked").inc()
                return
            if isinstance(item, IncidentOut) and cluster is not None and item.cluster_id != cluster:
                item = None
            if isinstance(item, IncidentOut) and seen.get(item.id, 0) < item.version:
                seen[item.id] = item.version  # NB: a change comes once, by push or by poll
                quiet_since = loop.time()
                yield format_event(item)
            now = loop.time()
            if now - checked_at >= recheck:
                checked_at = now
                why = await _access_ended(ctx, principal)
                if why is not None:
                    STREAMS_ENDED.labels(why=why).inc()
                    return
                if await request.is_disconnected():
                    return
            if now - quiet_since >= heartbeat:
                quiet_since = now
                yield b": heartbeat\n\n"
    finally:
        ctx.events.unsubscribe(stream)


async def _access_ended(ctx: ApiContext, principal: Principal) -> str | None:
    """Why this stream may no longer be served (None: it may)."""
    if await ctx.authority.lookup(principal.token_id) is None:
        return "revoked"
    if principal.via == "session" and await ctx.authority.session_ended(principal.session_id):
        return "logged_out"
    return None


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "incident changes"},
        **problem_responses(429),
    },
)
async def incident_events(
    request: Request,
    ctx: Annotated[ApiContext, Depends(app_context)],
    principal: Annotated[Principal, Depends(requires("viewer"))],
    since: Annotated[
        datetime | None, Query(description="also report changes after this moment (RFC 3339)")
    ] = None,
    cluster: Annotated[str | None, Query(max_length=253, description="only this cluster's incidents")] = None,
) -> StreamingResponse:
    """``event: incident`` frames (JSON incident, its ``cluster_id`` included) whenever an incident
    changes; heartbeats as comments."""
    api = ctx.settings.api
    assert ctx.events is not None
    open_now = ctx.events.open_for(principal.token_id)
    if open_now >= ctx.events.max_per_token:
        STREAMS_ENDED.labels(why="refused").inc()
        raise Problem(
            429,
            f"this token has {open_now} event streams open, the most allowed (api.max_streams_per_token)",
            headers=retry_after_header(5),
        )
    stream = incident_stream(
        ctx,
        request,
        principal=principal,
        heartbeat=api.events_heartbeat.total_seconds(),
        recheck=api.events_poll_interval.total_seconds(),
        since=since if since is None or since.tzinfo is not None else since.replace(tzinfo=UTC),
        cluster=cluster or None,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
