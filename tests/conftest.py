from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aetherius.store import Store
from tests.receivers import Receiver, serving_receiver
from tests.services import (
    NATS_URL,
    REDIS_URL,
    PrivateNats,
    fresh_postgres_database_blocking,
    private_nats,
    require_service,
)


@pytest.fixture
def nats_url() -> str:
    """The machine's shared NATS JetStream; use unique stream and subject names per test."""
    require_service("NATS", "127.0.0.1", 4222)
    return NATS_URL


@pytest.fixture
def redis_url() -> str:
    """The machine's shared Redis; use a unique key prefix per test."""
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    """A private nats-server with JetStream that the test may stop and restart."""
    with private_nats(tmp_path / "nats") as server:
        yield server


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database of this test module's own, dropped afterwards."""
    with fresh_postgres_database_blocking() as url:
        yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """The store over the ``db_url`` its directory's conftest provides (a migrated database)."""
    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook and Slack receiver on a free loopback port (see tests/receivers.py)."""
    async with serving_receiver() as state:
        yield state
