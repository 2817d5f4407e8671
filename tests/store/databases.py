"""Fresh databases for store tests: a new PostgreSQL database per module, or a SQLite file.

The same tests run against both (``db_url`` is parametrized), so the embedded default and
production never drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from aetherius.store import migrate
from aetherius.store.engine import create_engine, resolve_url
from tests.services import fresh_postgres_database_blocking

BACKENDS = ("sqlite", "postgresql")


@contextlib.contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """Yield the URL of an empty database that is dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'aeth_{secrets.token_hex(4)}.db'}"
        return
    with fresh_postgres_database_blocking() as url:
        yield url


async def _upgrade(url: str) -> None:
    engine = create_engine(resolve_url(url))
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def migrated_database(backend: str, directory: Path) -> Iterator[str]:
    with fresh_database(backend, directory) as url:
        asyncio.run(_upgrade(url))
        yield url


def db_url_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url
