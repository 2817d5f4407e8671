"""Knowledge search through the API on both stores: the store's full-text search, ranked."""

from __future__ import annotations

import secrets

import httpx
import pytest

from aetherius.knowledge import shipped_runbooks_dir, sync_runbooks
from aetherius.store import Store
from tests.api.conftest import Tokens
from tests.api.seed import seed_incident, unique_cluster


@pytest.fixture
async def runbooks(store: Store) -> None:
    await sync_runbooks(store, shipped_dir=shipped_runbooks_dir())


@pytest.mark.usefixtures("runbooks")
async def test_search_ranks_runbooks_and_shows_a_snippet(client: httpx.AsyncClient, tokens: Tokens) -> None:
    viewer = tokens.header("viewer")
    response = await client.get(
        "/api/v1/knowledge", params={"q": "PersistentVolumeClaim pending: no storage class"}, headers=viewer
    )
    assert response.status_code == 200
    hits = response.json()
    assert hits and hits[0]["slug"] == "pvc-pending" and hits[0]["source"] == "shipped"
    assert "storage" in hits[0]["snippet"].lower()
    limited = await client.get("/api/v1/knowledge", params={"q": "pod container", "limit": 2}, headers=viewer)
    assert len(limited.json()) == 2


@pytest.mark.usefixtures("runbooks")
@pytest.mark.parametrize("q", ['"', "AND", "*", 'memory" OR "', "NEAR(memory", "x:* & !y", "'; --"])
async def test_query_syntax_is_plain_text(client: httpx.AsyncClient, tokens: Tokens, q: str) -> None:
    response = await client.get("/api/v1/knowledge", params={"q": q}, headers=tokens.header("viewer"))
    assert response.status_code == 200, response.text
    hits = response.json()
    assert isinstance(hits, list)
    if "memory" in q:
        assert hits and any(h["slug"] == "oom-killed" for h in hits)


async def test_a_resolution_note_is_found_by_its_words(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    word = f"quokka{secrets.token_hex(3)}"
    incident = await seed_incident(
        store, cluster=unique_cluster(), summary=f"Pod {word}-api ran out of memory"
    )
    await store.resolve_incident(
        incident.id, by="alice", note=f"Bounded the {word} cache; memory is flat now."
    )
    hits = (
        await client.get(
            "/api/v1/knowledge", params={"q": f"{word}, cache!"}, headers=tokens.header("viewer")
        )
    ).json()
    assert hits[0]["incident_id"] == incident.id and hits[0]["source"] == "incident"
    assert word in hits[0]["snippet"]


async def test_empty_or_wordless_queries(client: httpx.AsyncClient, tokens: Tokens) -> None:
    viewer = tokens.header("viewer")
    assert (await client.get("/api/v1/knowledge", params={"q": ""}, headers=viewer)).status_code == 422
    wordless = await client.get("/api/v1/knowledge", params={"q": "?! --"}, headers=viewer)
    assert wordless.status_code == 200 and wordless.json() == []
