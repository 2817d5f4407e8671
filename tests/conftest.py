from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import NATS_URL, REDIS_URL, PrivateNats, private_nats, require_service


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
