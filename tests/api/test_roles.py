"""Every /api/v1 route: no token → 401, a weaker role → 403, the right role → not refused."""

from __future__ import annotations

import httpx
import pytest

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


@pytest.mark.parametrize(("method", "path", "least", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
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
    assert (await client.delete(f"/api/v1/tokens/{token_id}", headers=tokens.header("admin"))).status_code == 204
    assert (await client.get("/api/v1/incidents", headers=me)).status_code == 401
    again = await client.delete(f"/api/v1/tokens/{token_id}", headers=tokens.header("admin"))
    assert again.status_code == 404


async def test_diagnose_without_kube_client_is_503(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post("/api/v1/diagnose", json={"namespace": "shop"}, headers=tokens.header("operator"))
    assert response.status_code == 503 and "diagnosis not configured" in response.json()["detail"]
