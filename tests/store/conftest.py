from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from aetherius.store import Store
from tests.store.databases import BACKENDS, db_url_fixture


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of each backend, shared by the tests of one module."""
    yield from db_url_fixture(request, tmp_path_factory)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()
