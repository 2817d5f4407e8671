"""Database URLs and what happens when the database is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from aetherius.store import Store, StoreError, StoreUnavailable, resolve_url
from aetherius.store.engine import default_sqlite_path, redact
from tests.services import free_port


def test_empty_url_is_a_sqlite_file_under_the_data_directory() -> None:
    env = {"HOME": "/home/ada"}
    assert default_sqlite_path(env) == Path("/home/ada/.local/share/aetherius/aetherius.db")
    env["XDG_DATA_HOME"] = "/data"
    url = resolve_url("", env=env)
    assert url.drivername == "sqlite+aiosqlite" and url.database == "/data/aetherius/aetherius.db"


def test_urls_map_onto_async_drivers() -> None:
    assert resolve_url("postgresql://u:p@db:5432/a").drivername == "postgresql+asyncpg"
    assert resolve_url("postgres://u@db/a").drivername == "postgresql+asyncpg"
    assert resolve_url("sqlite:////tmp/x.db").drivername == "sqlite+aiosqlite"
    with pytest.raises(StoreError, match="only postgresql:// and sqlite://"):
        resolve_url("mysql://u@db/a")
    with pytest.raises(StoreError, match="not a URL"):
        resolve_url("nonsense")
    assert "secret" not in redact("postgresql://u:secret@db/a")


async def test_postgresql_refusing_connections_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StoreUnavailable) as caught:
        await Store.open(f"postgresql://postgres@127.0.0.1:{port}/aetherius")
    assert str(caught.value) == f"cannot reach PostgreSQL at 127.0.0.1:{port}/aetherius: connection refused"


async def test_a_missing_postgresql_database_is_named() -> None:
    with pytest.raises(StoreUnavailable, match="database does not exist"):
        await Store.open("postgresql://postgres@127.0.0.1:5432/aeth_does_not_exist_x")


async def test_sqlite_in_a_directory_that_cannot_exist(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the directory of the SQLite database"):
        await Store.open(f"sqlite:///{blocker}/sub/aetherius.db")
