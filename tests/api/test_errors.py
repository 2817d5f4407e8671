"""Every failure is a problem document: unknown routes, validation, size, time, our own bugs."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
from fastapi import FastAPI

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.store import Store
from tests.api.conftest import Tokens, make_settings

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    assert "Traceback" not in response.text
    return dict(body)


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/nope"), 404)
    assert "no route GET /api/v1/nope" in str(body["detail"])
    assert_problem(await client.put("/health/live"), 405)


async def test_validation_error_names_the_field(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.get("/api/v1/incidents?limit=0", headers=tokens.header("viewer"))
    body = assert_problem(response, 422)
    assert "limit" in str(body["detail"]) and isinstance(body["errors"], list)
    bad = await client.get("/api/v1/incidents/not-a-number", headers=tokens.header("viewer"))
    assert_problem(bad, 422)


async def test_blank_token_name_is_a_422_not_a_500(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    """Found by schemathesis: a name of only spaces passed the length check and the store refused it."""
    before = len(await store.list_tokens())
    response = await client.post(
        "/api/v1/tokens", json={"name": "  ", "role": "viewer"}, headers=tokens.header("admin")
    )
    assert "name" in str(assert_problem(response, 422)["detail"])
    assert len(await store.list_tokens()) == before


async def test_bad_cursor_is_a_400(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.get("/api/v1/incidents?cursor=%%%garbage", headers=tokens.header("viewer"))
    assert "cursor" in str(assert_problem(response, 400)["detail"])
    # Well formed but no cursor of ours: an id beyond 64 bits (PostgreSQL refuses to bind it).
    forged = base64.urlsafe_b64encode(json.dumps(["2030-01-01T00:00:00+00:00", 2**64]).encode()).decode()
    response = await client.get(
        "/api/v1/incidents", params={"cursor": forged}, headers=tokens.header("viewer")
    )
    assert "cursor" in str(assert_problem(response, 400)["detail"])


async def test_a_nul_character_in_a_list_filter_is_a_422(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """PostgreSQL text cannot hold NUL: its driver refused the filter and the list answered 500."""
    for name in ("q", "cluster", "reason"):
        response = await client.get(
            "/api/v1/incidents", params={name: "a\x00b"}, headers=tokens.header("viewer")
        )
        assert "NUL" in str(assert_problem(response, 422)["detail"])


async def test_oversized_body_is_refused_before_parsing(store: Store, bus: MemoryBus, tokens: Tokens) -> None:
    app = create_app(settings=make_settings(max_body_bytes=2048), store=store, bus=bus)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post(
            "/api/v1/tokens", content=b"{" + b" " * 4096 + b"}", headers=tokens.header("admin")
        )
        body = assert_problem(response, 413)
        assert "2048 bytes" in str(body["detail"])

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b" " * 1000

        streamed = await http.post("/api/v1/tokens", content=chunks(), headers=tokens.header("admin"))
        assert_problem(streamed, 413)


async def test_slow_handler_times_out_with_504(store: Store, bus: MemoryBus) -> None:
    app = create_app(settings=make_settings(request_timeout="0.2s"), store=store, bus=bus)

    @app.get("/slow-for-test")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(5)
        return {}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert "0.2s" in str(assert_problem(await http.get("/slow-for-test"), 504)["detail"])


async def test_a_bug_is_a_500_problem_without_internals(app: FastAPI) -> None:
    @app.get("/boom-for-test")
    async def boom() -> dict[str, str]:
        raise RuntimeError("secret internal detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/boom-for-test")
    body = assert_problem(response, 500)
    assert "secret internal detail" not in response.text and "logged" in str(body["detail"])


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    assert (await client.get("/health/ready")).json() == {"status": "ok"}
