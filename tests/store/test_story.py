"""The incident page's one-snapshot read, and the list's keyset pages, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from aetherius.store import AuditEntry, IncidentFilters, NotFound, Store, StoreUnavailable
from tests.store.databases import migrated_database
from tests.store.helpers import make_signal, unique, upsert_for


async def test_incident_story_matches_the_separate_reads(store: Store) -> None:
    cluster, fingerprint = unique("c"), unique("fp")
    incident_id = 0
    for occurrence in (1, 2, 3):
        signal = make_signal(cluster=cluster, pod="api-1", occurrence=occurrence)
        change = await store.upsert_incident(upsert_for(signal, fingerprint=fingerprint), signal=signal)
        assert change.incident is not None
        incident_id = change.incident.id
    for version in (1, 2):
        await store.add_report(
            incident_id,
            document={"summary": f"v{version}", "evidence": ["OOMKilled"]},
            markdown=f"# v{version}",
            root_cause="OutOfMemory",
            severity="critical",
            summary=f"v{version}",
            evidence_hash=f"h{version}",
        )
    await store.record_audit(
        [
            AuditEntry(operation=op, resource="pods", name="api-1", incident_id=incident_id)
            for op in ("get", "logs")
        ]
    )

    story = await store.incident_story(incident_id, signals_limit=2, audit_limit=10)
    assert story.incident == await store.get_incident(incident_id)
    assert story.reports == await store.list_reports(incident_id) and [r.version for r in story.reports] == [
        2,
        1,
    ]
    assert story.signals == await store.incident_signals(incident_id, limit=2)
    assert [s.occurrence for s in story.signals] == [2, 3]
    assert story.audit == await store.list_audit(incident_id=incident_id)
    assert [a.operation for a in story.audit] == ["get", "logs"]
    with pytest.raises(NotFound):
        await store.incident_story(2**62)


async def test_list_pages_walk_every_incident_once_newest_first(store: Store) -> None:
    cluster = unique("c")
    ids = []
    for n in range(7):
        signal = make_signal(cluster=cluster, pod=f"api-{n}")
        change = await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
        assert change.incident is not None
        ids.append(change.incident.id)
    seen: list[int] = []
    cursor = None
    while True:
        page = await store.list_incidents(IncidentFilters(cluster_id=cluster), cursor=cursor, limit=3)
        seen += [i.id for i in page.items]
        assert [i.last_seen for i in page.items] == sorted((i.last_seen for i in page.items), reverse=True)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert all(isinstance(i.affected_objects, list) and i.affected_objects for i in page.items)


@pytest.fixture
def postgresql_url(tmp_path: Path) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path) as url:
        yield url


async def test_reads_survive_their_pooled_connections_being_killed(postgresql_url: str) -> None:
    """The read pool has no pre-ping: a dead connection is noticed by the query and retried once."""
    url = postgresql_url
    store = await Store.open(url)
    try:
        signal = make_signal(cluster=unique("c"), pod="api-1")
        await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
        assert len((await store.list_incidents()).items) == 1  # the read pool now holds a connection
        killer = await asyncpg.connect(url)
        try:
            killed = await killer.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await killer.close()
        assert killed >= 1
        assert len((await store.list_incidents()).items) == 1
    finally:
        await store.close()


async def test_a_database_refusing_connections_is_store_unavailable(postgresql_url: str) -> None:
    """Not a driver traceback: the API turns ``StoreUnavailable`` into a 503 with Retry-After."""
    store = await Store.open(postgresql_url)
    name = postgresql_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(postgresql_url.rsplit("/", 1)[0] + "/postgres")
    try:
        assert (await store.list_incidents()).items == []
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        with pytest.raises(StoreUnavailable, match="cannot connect to the database"):
            await store.list_incidents()
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await store.list_incidents()).items == []
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await store.close()
