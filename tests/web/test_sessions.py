"""Dashboard sessions: login with a token, HttpOnly SameSite cookie, CSRF on every change."""

from __future__ import annotations

import re

import httpx

from aetherius.store import Store
from tests.api.conftest import Tokens
from tests.api.seed import seed_incident, unique_cluster


async def login(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/login?next=/incidents")
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert nonce is not None
    return await client.post(
        "/login", data={"token": token, "csrf_token": nonce.group(1), "next": "/incidents"}
    )


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_pages_redirect_to_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/incidents?severity=critical")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=/incidents")


async def test_login_sets_a_strict_httponly_cookie(client: httpx.AsyncClient, tokens: Tokens) -> None:
    bad = await login(client, "aeth_wrong")
    assert bad.status_code == 303 and "error=invalid" in bad.headers["location"]
    good = await login(client, tokens.viewer)
    assert good.status_code == 303 and good.headers["location"] == "/incidents"
    cookie = good.headers["set-cookie"]
    assert "aetherius_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert tokens.viewer not in cookie
    assert (await client.get("/incidents")).status_code == 200


async def test_login_form_needs_its_nonce(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post("/login", data={"token": tokens.admin, "csrf_token": "forged"})
    assert response.status_code == 303 and "error=expired" in response.headers["location"]
    assert "aetherius_session" not in response.headers.get("set-cookie", "")


async def test_open_redirects_are_refused(client: httpx.AsyncClient, tokens: Tokens) -> None:
    form = await client.get("/login?next=//evil.example/x")
    assert 'name="next" value="/"' in form.text


async def test_resolve_form_needs_csrf_and_operator(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    incident = await seed_incident(store, cluster=unique_cluster())
    await login(client, tokens.operator)
    page = await client.get(f"/incidents/{incident.id}")
    assert "Container api is killed" in page.text and "OutOfMemory" in page.text
    forged = await client.post(f"/incidents/{incident.id}/resolve", data={"note": "x", "csrf_token": "nope"})
    assert forged.status_code == 403
    assert (await store.get_incident(incident.id)).state == "open"
    done = await client.post(
        f"/incidents/{incident.id}/resolve",
        data={"note": "raised the limit", "csrf_token": csrf_of(page.text)},
    )
    assert done.status_code == 303
    resolved = await store.get_incident(incident.id)
    assert resolved.state == "resolved" and resolved.resolution_note == "raised the limit"


async def test_viewer_session_cannot_resolve(client: httpx.AsyncClient, store: Store, tokens: Tokens) -> None:
    incident = await seed_incident(store, cluster=unique_cluster())
    await login(client, tokens.viewer)
    page = await client.get(f"/incidents/{incident.id}")
    assert "Resolve</button>" not in page.text
    response = await client.post(f"/incidents/{incident.id}/resolve", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 403


async def test_api_calls_with_a_session_need_the_csrf_header(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    incident = await seed_incident(store, cluster=unique_cluster())
    await login(client, tokens.operator)
    assert (await client.get("/api/v1/incidents")).status_code == 200  # reads need no CSRF token
    url = f"/api/v1/incidents/{incident.id}/acknowledge"
    refused = await client.post(url, json={"note": ""})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    page = await client.get(f"/incidents/{incident.id}")
    accepted = await client.post(url, json={"note": ""}, headers={"X-CSRF-Token": csrf_of(page.text)})
    assert accepted.status_code == 200 and accepted.json()["state"] == "acknowledged"


async def test_settings_is_admin_only_and_shows_a_new_token_once(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await login(client, tokens.operator)
    assert (await client.get("/settings")).status_code == 403
    client.cookies.clear()
    await login(client, tokens.admin)
    page = await client.get("/settings")
    # On a phone each token is a card, each value beside its label (the Clusters page's layout).
    assert '<table class="tokens cards">' in page.text and '<td data-label="State">' in page.text
    assert re.search(r'<td data-label="Last used"><time datetime="[^"]+" data-ago>', page.text)
    created = await client.post(
        "/settings/tokens", data={"name": "ci-bot", "role": "viewer", "csrf_token": csrf_of(page.text)}
    )
    assert created.status_code == 303
    shown = await client.get("/settings?created=1")
    secret = re.search(r'class="secret">([^<]+)<', shown.text)
    assert secret is not None and secret.group(1).startswith("aeth_")
    assert secret.group(1) not in (await client.get("/settings?created=1")).text


async def test_overview_and_knowledge_pages(client: httpx.AsyncClient, store: Store, tokens: Tokens) -> None:
    cluster = unique_cluster()
    await store.upsert_cluster(cluster, name="edge-1", detected_by="config", watcher_health={"status": "ok"})
    await seed_incident(store, cluster=cluster)
    await login(client, tokens.viewer)
    overview = await client.get("/")
    assert (
        "edge-1" in overview.text
        and "<svg" in overview.text
        and "incidents opened in the last 14 days" in overview.text
    )
    assert (await client.get("/knowledge?q=memory")).status_code == 200
