"""Full-text search over the shipped runbooks and resolved incidents, on SQLite FTS5 and PostgreSQL.

These go through ``Store.search_documents`` itself (no fallback anywhere): a query that does not
compile, a parameter left unbound or user text read as query syntax fails here on the backend
that has the problem.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from aetherius.knowledge import shipped_runbooks_dir, sync_runbooks
from aetherius.store import Store
from aetherius.store.knowledge import MAX_QUERY_WORDS, query_words
from tests.knowledge.helpers import resolved_incident
from tests.store.databases import BACKENDS, migrated_database


@pytest.fixture(scope="module", params=BACKENDS)
def runbooks_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database holding only the shipped runbooks, shared by the read-only tests below."""
    with migrated_database(request.param, tmp_path_factory.mktemp("db")) as url:

        async def load() -> None:
            opened = await Store.open(url)
            try:
                await _shipped(opened)
            finally:
                await opened.close()

        asyncio.run(load())
        yield url


@pytest.fixture
async def runbooks(runbooks_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(runbooks_url)
    try:
        yield opened
    finally:
        await opened.close()


async def _shipped(store: Store) -> None:
    result = await sync_runbooks(store, shipped_dir=shipped_runbooks_dir())
    assert result.shipped >= 20 and result.problems == []


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("container killed out of memory limit", "oom-killed"),
        ("persistent volume claim pending storage class", "pvc-pending"),
        ("0/3 nodes are available: insufficient cpu", "failed-scheduling"),
        ("Liveness probe failed: connection refused", "unhealthy"),
        ('memory, "limit"!', "oom-killed"),
        ("ConfigMap not found", "create-container-config-error"),
    ],
)
async def test_runbooks_rank_the_telling_one_first(runbooks: Store, query: str, best: str) -> None:
    hits = await runbooks.search_documents(query, limit=5)
    assert hits and hits[0].slug == best and hits[0].source == "shipped"
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    assert hits[0].body and hits[0].title and hits[0].updated_at.tzinfo is not None


async def test_several_words_rank_documents_sharing_more_of_them_higher(store: Store) -> None:
    both = await store.upsert_document(
        source="user", slug="both", title="Disk pressure", body="The kubelet evicts pods when disk fills up."
    )
    one = await store.upsert_document(
        source="user", slug="one", title="Disk layout", body="Partition the volumes ahead of time."
    )
    hits = await store.search_documents("disk evicts kubelet", limit=10)
    assert [h.id for h in hits] == [both, one]
    assert hits[0].score > hits[1].score
    # Stemming: "evictions" finds "evicts" on both databases.
    assert [h.id for h in await store.search_documents("evictions")] == [both]


async def test_resolved_incident_notes_are_searchable(store: Store) -> None:
    await _shipped(store)
    leak = await resolved_incident(
        store,
        namespace="payments",
        workload="ledger",
        reason="OOMKilled",
        root_cause="OutOfMemory",
        summary="Container ledger killed for exceeding its 256Mi memory limit",
        note="Found an unbounded LRU cache in the ledger's reconciler; capped it at 10k entries.",
    )
    other = await resolved_incident(
        store,
        namespace="payments",
        workload="ledger",
        reason="ImagePullBackOff",
        root_cause="ImageNotFound",
        summary="Container ledger cannot pull payments/ledger:v9",
        note="The CI pipeline pushed to the wrong registry; retagged.",
    )
    hits = await store.search_documents("unbounded LRU cache reconciler")
    assert [h.incident_id for h in hits][:1] == [leak] and hits[0].source == "incident"
    assert "capped it at 10k" in hits[0].body
    only_incidents = await store.search_documents("ledger memory limit", sources=("incident",))
    assert [h.incident_id for h in only_incidents][:1] == [leak]
    assert {h.source for h in only_incidents} == {"incident"}
    mixed = await store.search_documents("ledger memory limit", limit=20)
    assert {"incident", "shipped"} <= {h.source for h in mixed}
    excluded = await store.search_documents("unbounded LRU cache", exclude_incident=leak)
    assert leak not in {h.incident_id for h in excluded}
    assert await store.search_documents("retagged", sources=("shipped", "user")) == []
    assert other in {h.incident_id for h in await store.search_documents("registry retagged")}


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"memory',
        "memory AND",
        "AND OR NOT",
        "*",
        "memory*",
        "^memory",
        "title:memory",
        "NEAR(memory limit, 2)",
        "memory + limit - cache",
        "'); DROP TABLE knowledge_documents; --",
        "memory & limit | !cache <-> (x:*)",
        "O'Brien's pod",
        "\\ % _ \x00",
        "mémoire 内存 limit",
    ],
)
async def test_query_syntax_in_user_text_is_never_an_error(runbooks: Store, query: str) -> None:
    hits = await runbooks.search_documents(query, limit=5)
    if "memory" in query.lower() or "limit" in query.lower():
        assert hits, f"{query!r} shares words with the runbooks"
    assert len(await runbooks.list_documents(source="shipped")) >= 20  # nothing was dropped


@pytest.mark.parametrize("query", ["", "   ", "!!! ??? --", "a", "the and of"])
async def test_a_query_without_words_finds_nothing(runbooks: Store, query: str) -> None:
    assert await runbooks.search_documents(query) == []


async def test_limit_bounds_the_hits(runbooks: Store) -> None:
    assert len(await runbooks.search_documents("pod container", limit=3)) == 3
    assert await runbooks.search_documents("pod container", limit=0) == []


def test_query_words_are_distinct_bounded_and_free_of_syntax() -> None:
    assert query_words('The "OOMKilled" pod, and its memory-limit!') == [
        "oomkilled",
        "pod",
        "memory",
        "limit",
    ]
    assert query_words("AND OR * NEAR(") == ["near"]
    many = " ".join(f"word{i}" for i in range(MAX_QUERY_WORDS * 2))
    assert len(query_words(many)) == MAX_QUERY_WORDS
