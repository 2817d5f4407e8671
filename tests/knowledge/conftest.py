from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.databases import BACKENDS, db_url_fixture


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh migrated database per test: the knowledge base is global, tests must not share it."""
    yield from db_url_fixture(request, tmp_path_factory)
