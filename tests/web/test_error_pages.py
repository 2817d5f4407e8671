"""A browser refused by the dashboard sees an HTML page saying what to do; scripts keep JSON.

Every case goes through the real app with a real store: the problem document is produced where
the refusal happens and rendered by the one negotiation in ``api.problems``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from aetherius.api.deps import requires
from aetherius.api.problems import PROBLEM_MEDIA_TYPE, Problem, as_page, wants_page
from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.store import Store
from aetherius.web.views import _lines
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, unique_cluster
from tests.web.test_sessions import csrf_of, login

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(params=["sqlite"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    return sqlite_url


def assert_page(response: httpx.Response, status: int, *phrases: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text = response.text
    assert '<a class="brand" href="/">Aetherius</a>' in text and f"Error {status}" in text
    assert "Traceback" not in text and '"status":' not in text
    for phrase in phrases:
        assert phrase in text, phrase
    return text


async def browser_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=BROWSER) as http:
        yield http


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for http in browser_client(app):
        yield http


def scope(path: str, accept: str | None) -> dict[str, Any]:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    return {"type": "http", "path": path, "headers": headers}


def test_who_gets_a_page() -> None:
    assert wants_page(scope("/incidents/3", BROWSER["Accept"]))
    assert wants_page(scope("/settings/tokens", "text/html"))
    assert not wants_page(scope("/incidents/3", None))
    assert not wants_page(scope("/incidents/3", "*/*"))
    assert not wants_page(scope("/incidents/3", "application/json, text/html"))
    assert not wants_page(scope("/incidents/3", "text/html;q=0.5, application/problem+json"))
    assert not wants_page(scope("/incidents/3", "text/html;q=0"))
    for api in ("/api/v1/incidents/3", "/webhooks/alertmanager", "/health/ready", "/api"):
        assert not wants_page(scope(api, BROWSER["Accept"])), api


async def test_unknown_incident_is_a_404_page_with_the_session_nav(
    browser: httpx.AsyncClient, tokens: Tokens
) -> None:
    await login(browser, tokens.viewer)
    text = assert_page(await browser.get("/incidents/987654"), 404, "That incident does not exist")
    assert 'href="/incidents"' in text and "Log out</button>" in text and "no incident 987654" in text
    unknown = await browser.get("/no-such-page")
    assert_page(unknown, 404, "There is nothing at this address", "Log out</button>")


async def test_missing_role_is_a_403_page(browser: httpx.AsyncClient, tokens: Tokens) -> None:
    await login(browser, tokens.operator)
    assert_page(await browser.get("/settings"), 403, "needs the admin role", "Ask an administrator")


async def test_tampered_csrf_is_a_403_page_that_says_reload(
    browser: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    incident = await seed_incident(store, cluster=unique_cluster())
    await login(browser, tokens.operator)
    page = f"http://testserver/incidents/{incident.id}"
    response = await browser.post(
        f"/incidents/{incident.id}/resolve",
        data={"note": "x", "csrf_token": "tampered"},
        headers={"Referer": page},
    )
    text = assert_page(response, 403, "Your session form expired: reload the page and try again")
    assert f'href="/incidents/{incident.id}">Reload the page' in text
    assert (await store.get_incident(incident.id)).state == "open"


async def test_invalid_form_is_a_422_page_naming_the_field(
    browser: httpx.AsyncClient, tokens: Tokens
) -> None:
    await login(browser, tokens.admin)
    settings = await browser.get("/settings")
    response = await browser.post(
        "/settings/tokens", data={"name": "", "role": "root", "csrf_token": csrf_of(settings.text)}
    )
    text = assert_page(response, 422, "Go back, correct it and submit again", "<li>name: ", "<li>role: ")
    assert "body.name" not in text


async def test_rate_limit_is_a_429_page_with_retry_after(
    store: Store, bus: MemoryBus, tokens: Tokens
) -> None:
    app = create_app(
        settings=make_settings(rate_limit_burst=3, rate_limit_per_second=0.01), store=store, bus=bus
    )
    async for http in browser_client(app):
        await login(http, tokens.viewer)
        statuses = [(await http.get("/incidents")).status_code for _ in range(3)]
        limited = await http.get("/incidents")
        assert statuses == [200, 200, 200]
        assert_page(limited, 429, "Wait 1 second, then try again")
        assert limited.headers["retry-after"] == "1"


async def test_no_session_redirects_to_login_keeping_next(app: FastAPI, browser: httpx.AsyncClient) -> None:
    @app.get("/token-only-for-test", dependencies=[Depends(requires("viewer"))])
    async def token_only() -> dict[str, str]:
        return {}

    page = await browser.get("/incidents?state=open")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/incidents%3Fstate%3Dopen"
    problem_401 = await browser.get("/token-only-for-test")
    assert problem_401.status_code == 303
    assert problem_401.headers["location"] == "/login?next=/token-only-for-test"
    script = await browser.get("/token-only-for-test", headers={"Accept": "application/json"})
    assert script.status_code == 401 and script.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)


async def test_a_bug_is_a_500_page_without_internals(app: FastAPI, browser: httpx.AsyncClient) -> None:
    @app.get("/boom-for-test")
    async def boom() -> dict[str, str]:
        raise RuntimeError("secret internal detail")

    text = assert_page(await browser.get("/boom-for-test"), 500, "Something went wrong on our side")
    assert "secret internal detail" not in text and "RuntimeError" not in text


async def test_store_down_is_a_503_page(app: FastAPI, browser: httpx.AsyncClient) -> None:
    @app.get("/store-down-for-test")
    async def store_down() -> dict[str, str]:
        raise Problem(503, "the store is unavailable: connection refused", headers={"Retry-After": "5"})

    response = await browser.get("/store-down-for-test")
    assert_page(response, 503, "cannot reach its store", "connection refused")
    assert response.headers["retry-after"] == "5"


async def test_middleware_refusals_are_pages_too(store: Store, bus: MemoryBus, tokens: Tokens) -> None:
    """The body limit answers before any route: its problem is rendered all the same."""
    app = create_app(settings=make_settings(max_body_bytes=2048), store=store, bus=bus)
    async for http in browser_client(app):
        await login(http, tokens.operator)
        response = await http.post("/incidents/1/resolve", data={"note": "n" * 5000, "csrf_token": "x"})
        assert_page(response, 413, "Shorten the note")


async def test_api_clients_keep_problem_documents(browser: httpx.AsyncClient, tokens: Tokens) -> None:
    api = await browser.get("/api/v1/incidents/987654", headers=tokens.header("viewer"))
    assert api.status_code == 404 and api.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    await login(browser, tokens.viewer)
    script = await browser.get("/incidents/987654", headers={"Accept": "*/*"})
    assert script.status_code == 404 and script.json()["detail"] == "no incident 987654"


async def test_a_failing_renderer_falls_back_to_the_problem() -> None:
    async def broken(request: Request, problem: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
        raise RuntimeError("template exploded")

    request = Request({"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""})
    body = b'{"type":"t","title":"Not found","status":404,"detail":"d","instance":"/x"}'
    response = await as_page(request, body, {"Retry-After": "2"}, renderer=broken)
    assert response.status_code == 404 and response.media_type == PROBLEM_MEDIA_TYPE
    assert response.body == body and response.headers["retry-after"] == "2"


def test_report_lines_of_an_unknown_shape_are_not_shown_as_raw_data() -> None:
    lines = _lines([{"text": "exitCode=137"}, {"source": "events", "count": 41}, "limits.memory=256Mi"])
    assert lines == ["exitCode=137", "source: events; count: 41", "limits.memory=256Mi"]
