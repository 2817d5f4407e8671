"""The SSE stream over a real socket: heartbeats, and a frame when an incident changes."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.store import Store
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, unique_cluster
from tests.api.server import serving
from tests.waiting import until


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
            lines = stream.aiter_lines()
            heartbeat = False
            frames: list[dict[str, object]] = []

            async def read() -> None:
                nonlocal heartbeat
                event = ""
                async for line in lines:
                    if line.startswith(": heartbeat"):
                        heartbeat = True
                    elif line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "incident":
                        frames.append(json.loads(line[6:]))
                    if heartbeat and any(f["state"] == "acknowledged" for f in frames):
                        return  # both seen, in either order

            reader = asyncio.create_task(read())
            events = app.state.ctx.events
            await until(lambda: events.polls >= 1, "the poller's first read (the baseline)")
            # A change made by another writer (straight to the store, as the orchestrator would).
            await store.acknowledge_incident(incident.id, note="someone else")
            await asyncio.wait_for(reader, timeout=8)
    assert heartbeat
    assert any(f["id"] == incident.id and f["state"] == "acknowledged" for f in frames)


async def test_a_stream_for_one_cluster_hears_of_no_other(store: Store, tokens: Tokens) -> None:
    app = create_app(settings=make_settings(events_poll_interval="0.2s"), store=store, bus=MemoryBus())
    mine, other = unique_cluster(), unique_cluster()
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        url = f"/api/v1/events?cluster={mine}"
        async with http.stream("GET", url, headers=tokens.header("viewer")) as stream:
            frames: list[dict[str, object]] = []

            async def read() -> None:
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        frames.append(json.loads(line[6:]))
                        if any(f["cluster_id"] == mine for f in frames):
                            return

            reader = asyncio.create_task(read())
            events = app.state.ctx.events
            await until(lambda: events.polls >= 1, "the poller's first read (the baseline)")
            # NB: the other cluster's change first: had it been sent, it would arrive first.
            await seed_incident(store, cluster=other)
            seen = events.polls + 2  # a whole read after the change (one may have been under way)
            await until(lambda: events.polls >= seen, "the poller reading the other cluster's change")
            wanted = await seed_incident(store, cluster=mine)
            await asyncio.wait_for(reader, timeout=8)
    assert [f["id"] for f in frames] == [wanted.id]
    assert frames[0]["cluster_id"] == mine


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
            frames: list[dict[str, object]] = []

            async def read() -> None:
                # NB: on to the heartbeat after the change: anything else that first read sent
                # (the other incident, wrongly) came in the same batch, before it.
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        frames.append(json.loads(line[6:]))
                    elif line.startswith(": heartbeat") and any(f["id"] == changed.id for f in frames):
                        return

            await asyncio.wait_for(read(), timeout=8)
    assert frames[-1]["id"] == changed.id and frames[-1]["state"] == "acknowledged"
    assert before.id not in [f["id"] for f in frames], "an incident unchanged since is not news"
