"""The SSE stream over a real socket: heartbeats, and a frame when an incident changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.store import Store
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, unique_cluster
from tests.api.server import serving
from tests.waiting import until


@dataclass
class Received:
    """What a stream has sent so far: its incident frames, and whether a heartbeat came."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    heartbeat: bool = False
    at_heartbeat: bool = False  # the last thing read was a heartbeat

    def has(self, **wanted: object) -> bool:
        return any(all(f.get(k) == v for k, v in wanted.items()) for f in self.frames)


async def receive(stream: httpx.Response, done: Callable[[Received], bool]) -> Received:
    """Read the stream's frames until ``done`` says enough (checked after every line)."""
    received = Received()
    event = ""
    async for line in stream.aiter_lines():
        received.at_heartbeat = line.startswith(": heartbeat")
        received.heartbeat |= received.at_heartbeat
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            assert event == "incident", event
            received.frames.append(json.loads(line[6:]))
        if done(received):
            return received
    raise AssertionError(f"the stream ended early, after {received}")


async def test_stream_reports_changes_from_any_writer(store: Store, tokens: Tokens) -> None:
    app = create_app(
        settings=make_settings(events_poll_interval="0.2s", events_heartbeat="0.4s"),
        store=store,
        bus=MemoryBus(),
    )
    incident = await seed_incident(store, cluster=unique_cluster())
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        assert (await http.get("/api/v1/events")).status_code == 401
        async with http.stream("GET", "/api/v1/events", headers=tokens.header("viewer")) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            # both seen, in either order
            reader = asyncio.create_task(
                receive(stream, lambda r: r.heartbeat and r.has(state="acknowledged"))
            )
            events = app.state.ctx.events
            await until(lambda: events.polls >= 1, "the poller's first read (the baseline)")
            # A change made by another writer (straight to the store, as the orchestrator would).
            await store.acknowledge_incident(incident.id, note="someone else")
            received = await asyncio.wait_for(reader, timeout=8)
    assert received.has(id=incident.id, state="acknowledged")


async def test_a_stream_for_one_cluster_hears_of_no_other(store: Store, tokens: Tokens) -> None:
    app = create_app(settings=make_settings(events_poll_interval="0.2s"), store=store, bus=MemoryBus())
    mine, other = unique_cluster(), unique_cluster()
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        url = f"/api/v1/events?cluster={mine}"
        async with http.stream("GET", url, headers=tokens.header("viewer")) as stream:
            reader = asyncio.create_task(receive(stream, lambda r: r.has(cluster_id=mine)))
            events = app.state.ctx.events
            await until(lambda: events.polls >= 1, "the poller's first read (the baseline)")
            # NB: the other cluster's change first: had it been sent, it would arrive first.
            await seed_incident(store, cluster=other)
            seen = events.polls + 2  # a whole read after the change (one may have been under way)
            await until(lambda: events.polls >= seen, "the poller reading the other cluster's change")
            wanted = await seed_incident(store, cluster=mine)
            received = await asyncio.wait_for(reader, timeout=8)
    assert [f["id"] for f in received.frames] == [wanted.id]


async def test_a_change_just_before_the_poller_s_first_read_is_news(store: Store, tokens: Tokens) -> None:
    """The first read is the baseline, but what changed after the poller started is sent: a
    change between a stream's own replay and that read would otherwise reach no one.

    NB: the poller's clock is set to before the change, which is how that interleaving looks to
    it, without having to win a race."""
    app = create_app(
        settings=make_settings(events_poll_interval="0.2s", events_heartbeat="0.4s"),
        store=store,
        bus=MemoryBus(),
    )
    cluster = unique_cluster()
    before = await seed_incident(store, cluster=cluster, name="old-news")
    changed = await seed_incident(store, cluster=cluster, name="fresh")
    await store.acknowledge_incident(changed.id, by="someone", note="")
    acked = await store.get_incident(changed.id)
    assert before.updated_at is not None and acked.updated_at is not None
    assert before.updated_at < acked.updated_at
    # the poller "started" between the two: the first is the baseline, the second is news
    started = before.updated_at + (acked.updated_at - before.updated_at) / 2
    app.state.ctx.events.clock = lambda: started + timedelta(seconds=1)  # it allows 1 s of skew
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        url = f"/api/v1/events?cluster={cluster}"
        async with http.stream("GET", url, headers=tokens.header("viewer")) as stream:
            # NB: on to the heartbeat after the change: anything else that first read sent
            # (the other incident, wrongly) came in the same batch, before it.
            reader = receive(stream, lambda r: r.at_heartbeat and r.has(id=changed.id))
            received = await asyncio.wait_for(reader, timeout=8)
    assert received.frames[-1]["id"] == changed.id and received.frames[-1]["state"] == "acknowledged"
    assert not received.has(id=before.id), "an incident unchanged since is not news"
