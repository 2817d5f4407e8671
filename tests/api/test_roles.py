"""Every /api/v1 route: no token → 401, a weaker role → 403, the right role → not refused."""

from __future__ import annotations

import secrets

import httpx
import pytest

from aetherius.api.tokens import StoreTokenAuthority
from aetherius.store import Store
from tests.api.conftest import Tokens
from tests.api.seed import seed_incident, unique_cluster

ORDER = ("viewer", "operator", "admin")
# (method, path template, least role, json body)
ROUTES: list[tuple[str, str, str, object]] = [
    ("GET", "/api/v1/clusters", "viewer", None),
    ("GET", "/api/v1/clusters/{cluster}", "viewer", None),
    ("GET", "/api/v1/incidents", "viewer", None),
    ("GET", "/api/v1/incidents/{incident}", "viewer", None),
    ("POST", "/api/v1/incidents/{incident}/acknowledge", "operator", {"note": "looking"}),
    ("POST", "/api/v1/incidents/{incident}/rediagnose", "operator", None),
    ("POST", "/api/v1/incidents/{incident}/resolve", "operator", {"note": "raised the limit"}),
    ("GET", "/api/v1/knowledge?q=memory", "viewer", None),
    ("GET", "/api/v1/runbooks", "viewer", None),
    ("POST", "/api/v1/diagnose", "operator", {"namespace": "shop"}),
    ("GET", "/api/v1/tokens", "admin", None),
    ("POST", "/api/v1/tokens", "admin", {"name": "ci", "role": "viewer"}),
    ("GET", "/api/v1/sinks", "admin", None),
]


@pytest.mark.parametrize(
    ("method", "path", "least", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
async def test_route_roles(
    client: httpx.AsyncClient, store: Store, tokens: Tokens, method: str, path: str, least: str, body: object
) -> None:
    cluster = unique_cluster()
    incident = await seed_incident(store, cluster=cluster)
    await store.upsert_cluster(cluster, name=cluster, detected_by="config", watcher_health={"status": "ok"})
    url = path.format(cluster=cluster, incident=incident.id)

    anonymous = await client.request(method, url, json=body)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    wrong = await client.request(method, url, json=body, headers={"Authorization": "Bearer aeth_nope"})
    assert wrong.status_code == 401

    for role in ORDER:
        response = await client.request(method, url, json=body, headers=tokens.header(role))
        if ORDER.index(role) < ORDER.index(least):
            assert response.status_code == 403, (role, response.text)
            assert least in response.json()["detail"]
        else:
            assert response.status_code not in (401, 403), (role, response.text)
            assert response.status_code < 500 or response.status_code == 503, response.text


async def test_revoked_token_stops_working(client: httpx.AsyncClient, tokens: Tokens) -> None:
    created = await client.post(
        "/api/v1/tokens", json={"name": "short-lived", "role": "viewer"}, headers=tokens.header("admin")
    )
    assert created.status_code == 201
    secret, token_id = created.json()["token"], created.json()["id"]
    me = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/incidents", headers=me)).status_code == 200
    listed = (await client.get("/api/v1/tokens", headers=tokens.header("admin"))).json()
    assert all("token" not in t for t in listed) and any(t["id"] == token_id for t in listed)
    assert (
        await client.delete(f"/api/v1/tokens/{token_id}", headers=tokens.header("admin"))
    ).status_code == 204
    assert (await client.get("/api/v1/incidents", headers=me)).status_code == 401
    again = await client.delete(f"/api/v1/tokens/{token_id}", headers=tokens.header("admin"))
    assert again.status_code == 404


async def test_diagnose_without_kube_client_is_503(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post(
        "/api/v1/diagnose", json={"namespace": "shop"}, headers=tokens.header("operator")
    )
    assert response.status_code == 503 and "diagnosis not configured" in response.json()["detail"]


async def test_a_token_revoked_elsewhere_stops_working_once_its_cache_entry_is_old(store: Store) -> None:
    """Another process (the CLI, another replica) revokes: this one honours it within the bound."""
    now = [1000.0]
    authority = StoreTokenAuthority(store, cache_seconds=5.0, clock=lambda: now[0])
    created = await store.create_token(name=f"elsewhere-{secrets.token_hex(3)}", role="viewer")
    first = await authority.authenticate(created.secret)
    assert first is not None and first.token_id == str(created.token.id)
    assert await authority.lookup(first.token_id) is not None
    await store.revoke_token(created.token.id)
    now[0] += 4.9  # within the documented bound the verification may still be remembered
    assert await authority.authenticate(created.secret) == first
    now[0] += 0.2
    assert await authority.authenticate(created.secret) is None
    assert await authority.lookup(first.token_id) is None  # sessions of the token end too
    # A revocation through this process's own API forgets at once.
    other = await store.create_token(name=f"here-{secrets.token_hex(3)}", role="viewer")
    assert await authority.authenticate(other.secret) is not None
    await store.revoke_token(other.token.id)
    authority.forget()
    assert await authority.authenticate(other.secret) is None
