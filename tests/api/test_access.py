"""Access ends when it should, tried from the attacker's side over real HTTP, on SQLite and
PostgreSQL: a revoked token's streams close, a logged-out cookie is dead everywhere, guessing
tokens costs the guesser and not the store, streams are capped per token and share one poll,
odd cookies are a 4xx, and the OpenAPI document says how to authenticate and what can go wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from aetherius.api.auth import SESSION_COOKIE
from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.store import Store
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, unique_cluster
from tests.api.server import serving
from tests.waiting import until
from tests.web.test_sessions import csrf_of, login

FAST = {"events_poll_interval": "0.2s", "events_heartbeat": "1s"}


@pytest.fixture
def fast_app(store: Store, bus: MemoryBus) -> FastAPI:
    return create_app(settings=make_settings(**FAST, max_streams_per_token=2), store=store, bus=bus)


async def _frames(response: httpx.Response, into: list[str]) -> None:
    async for line in response.aiter_lines():
        into.append(line)


@contextlib.asynccontextmanager
async def _stream(
    url: str, token: str
) -> AsyncIterator[tuple[httpx.Response, list[str], asyncio.Task[None]]]:
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", f"{url}/api/v1/events", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        lines: list[str] = []
        reader = asyncio.create_task(_frames(r, lines))
        try:
            yield r, lines, reader
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader


async def test_revoking_a_token_closes_its_open_streams(fast_app: FastAPI, tokens: Tokens) -> None:
    async with serving(fast_app) as url, _stream(url, tokens.viewer) as (response, lines, reader):
        assert response.status_code == 200
        await until(lambda: any("connected" in line for line in lines), "the stream's first frame")
        token_id = tokens.ids["viewer"]  # NB: not any viewer token: the store outlives each test
        async with httpx.AsyncClient(base_url=url) as http:
            revoked = await http.delete(f"/api/v1/tokens/{token_id}", headers=tokens.header("admin"))
            assert revoked.status_code == 204
            await asyncio.wait_for(reader, timeout=5)  # the server ended the stream
            again = await http.get("/api/v1/incidents", headers=tokens.header("viewer"))
            assert again.status_code == 401, "and the next request is refused"


async def test_a_token_may_hold_only_so_many_streams_and_they_share_one_poll(
    fast_app: FastAPI, store: Store, tokens: Tokens
) -> None:
    events = fast_app.state.ctx.events
    reads: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM incidents" in statement:
            reads.append(statement)

    async with serving(fast_app) as url, _stream(url, tokens.viewer), _stream(url, tokens.viewer):
        async with httpx.AsyncClient(base_url=url) as http:
            third = await http.get("/api/v1/events", headers=tokens.header("viewer"))
            assert third.status_code == 429 and "max_streams_per_token" in third.json()["detail"]
        event.listen(store.engine.sync_engine, "before_cursor_execute", count)
        try:
            before = events.polls
            await until(lambda: events.polls - before >= 3, "three polls")  # however slow the machine
            polls, queries = events.polls - before, len(reads)
        finally:
            event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    # Two streams, one poller: one read of the incidents per poll, not one per stream.
    assert polls >= 3 and queries <= polls + 1, (polls, queries)


async def test_a_change_reaches_a_stream_once(fast_app: FastAPI, store: Store, tokens: Tokens) -> None:
    incident = await seed_incident(store, cluster=unique_cluster())
    events = fast_app.state.ctx.events
    async with serving(fast_app) as url, _stream(url, tokens.viewer) as (_, lines, _reader):
        await until(lambda: events.polls >= 1, "the poller's first read (the baseline)")
        async with httpx.AsyncClient(base_url=url) as http:
            acked = await http.post(
                f"/api/v1/incidents/{incident.id}/acknowledge",
                json={"note": "on it"},
                headers=tokens.header("operator"),
            )
            assert acked.status_code == 200, acked.text
        frame = f"id: {incident.id}.{acked.json()['version']}"
        after = events.polls
        # pushed at once, then seen again by two polls of the store (a second frame would be sent)
        await until(lambda: frame in lines and events.polls - after >= 2, "the frame and two polls")
    assert [line for line in lines if line.startswith("id: ")].count(frame) == 1, lines


async def test_wrong_tokens_are_throttled_before_the_store_is_asked(
    store: Store, bus: MemoryBus, tokens: Tokens
) -> None:
    app = create_app(
        settings=make_settings(auth_failures_burst=5, auth_failures_per_minute=1), store=store, bus=bus
    )
    queries: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        queries.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            codes = [
                (
                    await http.get("/api/v1/incidents", headers={"Authorization": f"Bearer aeth_guess{n}"})
                ).status_code
                for n in range(100)
            ]
            asked = len(queries)
            assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
            # Past the burst, no guess reaches the store.
            assert asked <= 5 * 2, queries
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)


async def test_a_logged_out_cookie_is_refused_even_replayed(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    assert (await login(client, tokens.viewer)).status_code == 303
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie and (await client.get("/api/v1/incidents")).status_code == 200
    page = await client.get("/incidents")
    out = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    client.cookies.set(SESSION_COOKIE, cookie)  # a copy kept by whoever had the cookie
    replayed = await client.get("/api/v1/incidents")
    assert replayed.status_code == 401, replayed.text


async def test_odd_cookies_and_csrf_values_are_a_4xx_not_a_500(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    for value in ("ünïcödé".encode(), b"\xff\xfe", b"a" * 4000 + b".x.y"):
        response = await client.get("/api/v1/incidents", headers={"Cookie": b"aetherius_session=" + value})
        assert response.status_code == 401, (value, response.status_code)
    await login(client, tokens.operator)
    incident_page = await client.get("/incidents")
    assert incident_page.status_code == 200
    forged = await client.post("/logout", data={"csrf_token": "ünïcödé"})
    assert forged.status_code == 403, forged.status_code
    login_form = await client.post("/login", data={"token": tokens.viewer, "csrf_token": "ünïcödé"})
    assert login_form.status_code == 303 and "error=expired" in login_form.headers["location"]


async def test_the_openapi_document_declares_how_to_authenticate_and_what_can_fail(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/api/v1/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerToken"] == {"type": "http", "scheme": "bearer"} | {
        k: v for k, v in schemes["bearerToken"].items() if k not in ("type", "scheme")
    }
    assert schemes["sessionCookie"]["in"] == "cookie" and schemes["sessionCookie"]["name"] == SESSION_COOKIE
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "500" in responses, (method, path)
            if path.startswith("/api/v1/") and path != "/api/v1/openapi.json":
                assert operation.get("security"), (method, path)
                assert {"401", "403", "429"} <= set(responses), (method, path)
