"""The packaged migrations: from empty to head, down to nothing and back, matching the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from aetherius.store import SchemaOutOfDate, Store, migrate
from aetherius.store.engine import create_engine, resolve_url
from aetherius.store.models import Base
from tests.store.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _not_search(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # The full-text search objects live only in the migrations (see store/models.py).
    return not (name or "").startswith(("knowledge_fts", "search", "ix_knowledge_search"))


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": False, "include_object": _not_search}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_from_empty_then_round_trip(empty_url: str) -> None:
    engine = create_engine(resolve_url(empty_url))
    try:
        assert await migrate.current_revision(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as connection:
            tables = await connection.run_sync(_tables)
            assert {"incidents", "signals", "reports", "audit_log", "api_tokens"} <= tables
            # The migrations build exactly what the models describe.
            assert await connection.run_sync(_diff) == []

        await migrate.downgrade(engine, "base")
        assert await migrate.current_revision(engine) is None
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) <= {"alembic_version"}
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


async def test_an_unmigrated_database_is_refused_with_a_hint(empty_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="aetherius db upgrade"):
        await Store.open(empty_url)
    store = await Store.open(empty_url, migrate_schema=True)
    try:
        assert await store.count_tokens() == 0
    finally:
        await store.close()


async def test_concurrent_migrate_on_start(empty_url: str) -> None:
    """Three replicas starting at once with migrate_on_start all come up on one schema."""
    import asyncio

    stores = await asyncio.gather(*(Store.open(empty_url, migrate_schema=True) for _ in range(3)))
    try:
        assert await migrate.current_revision(stores[0].engine) == migrate.head_revision()
    finally:
        for store in stores:
            await store.close()


async def test_0002_adds_acknowledged_by_to_existing_incidents(empty_url: str) -> None:
    """Upgrading a 0001 database keeps its incidents; they read as acknowledged by nobody known."""
    engine = create_engine(resolve_url(empty_url))
    try:
        await migrate.upgrade(engine, "0001")
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                "INSERT INTO incidents (cluster_id, namespace, fingerprint, object_kind, object_name, owner_kind,"
                " owner_name, reason, root_cause, summary, severity, state, signal_count, event_count, first_seen,"
                " last_seen, affected_objects, created_at, updated_at, acknowledged_at, resolved_by,"
                " resolution_note, reopen_count, report_version, version) VALUES ('c', 'ns', 'fp', 'Pod', 'p', '',"
                " '', 'OOMKilled', '', '', 'critical', 'acknowledged', 1, 1, '2026-01-01 00:00:00',"
                " '2026-01-01 00:00:00', '[]', '2026-01-01 00:00:00', '2026-01-01 00:00:00',"
                " '2026-01-01 00:00:00', '', '', 0, 0, 1)"
            )
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()
    store = await Store.open(empty_url)
    try:
        (incident,) = (await store.list_incidents()).items
        assert incident.state == "acknowledged" and incident.acknowledged_by == ""
    finally:
        await store.close()
    engine = create_engine(resolve_url(empty_url))
    try:
        await migrate.downgrade(engine, "0001")
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("incidents")}
            )
        assert "acknowledged_by" not in columns and "acknowledged_at" in columns
    finally:
        await engine.dispose()
