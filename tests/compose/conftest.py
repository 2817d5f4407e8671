from tests.api.conftest import (  # noqa: F401 - shared fixtures
    postgres_url,
    sqlite_url,
    store,
    store_url,
)
