from tests.api.conftest import (  # noqa: F401 - shared fixtures
    app,
    bus,
    client,
    postgres_url,
    settings,
    sqlite_url,
    store,
    store_url,
    tokens,
)
