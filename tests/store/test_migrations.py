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
