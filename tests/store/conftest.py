from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.databases import BACKENDS, db_url_fixture


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of each backend, shared by the tests of one module."""
    yield from db_url_fixture(request, tmp_path_factory)
