"""Database URLs and engines: PostgreSQL (asyncpg) in production, a SQLite file by default.

Both get the same schema; what differs is how writers are serialized. PostgreSQL uses row locks
and advisory locks; SQLite allows one writer, so every SQLite transaction starts with
``BEGIN IMMEDIATE`` (taking the write lock up front) and waits on ``busy_timeout`` instead of
failing with "database is locked" when two transactions both try to upgrade to writing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class StoreError(Exception):
    """A store problem phrased for a person (bad URL, unreachable database, old schema)."""


class StoreUnavailable(StoreError):
    """The database does not answer; callers keep their work and retry later."""


class NotFound(StoreError):
    """No such incident, report, token… (the API answers 404)."""


class InvalidTransition(StoreError):
    """The change does not apply to the object's current state (the API answers 409)."""


class InvalidInput(StoreError):
    """An argument the store refuses (an empty token name, an unknown role): the API answers 422."""


class InvalidCursor(StoreError):
    """A pagination cursor that this store did not hand out (the API answers 400)."""


class SchemaOutOfDate(StoreError):
    """The database schema is not the one this Aetherius needs: run ``aetherius db upgrade``."""


def default_sqlite_path(env: dict[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".local/share")
    return Path(base) / "aetherius" / "aetherius.db"


def resolve_url(url: str, *, env: dict[str, str] | None = None) -> URL:
    """Turn a configured URL into an async SQLAlchemy URL; empty means the default SQLite file."""
    text = url.strip()
    if not text:
        path = default_sqlite_path(env)
        return URL.create("sqlite+aiosqlite", database=str(path))
    try:
        parsed = make_url(text)
    except ArgumentError:
        raise StoreError(
            f"database url {redact(text)!r} is not a URL: use postgresql://user@host/db or sqlite:///path"
        ) from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    raise StoreError(f"database url {redact(text)!r}: only postgresql:// and sqlite:// are supported")


def redact(url: str | URL) -> str:
    """A URL safe to print: the password hidden."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparseable url>"
    return parsed.render_as_string(hide_password=True)


def describe(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"SQLite at {url.database or ':memory:'}"
    return f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def create_engine(
    url: URL, *, pool_size: int = 10, pre_ping: bool = True, max_overflow: int | None = None
) -> AsyncEngine:
    """An engine with the per-database settings the store relies on.

    ``pre_ping`` checks each connection taken from the pool (on asyncpg: BEGIN, a no-op query,
    ROLLBACK — three round trips); the store's read pool goes without and retries instead.
    """
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            directory = Path(database).expanduser().parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the directory of the SQLite database {database}: {exc.strerror or exc}"
                ) from None
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, json_deserializer=orjson.loads, hide_parameters=True
        )
        _sqlite_pragmas(engine)
        return engine
    # NB: hide_parameters: an error's text names the statement, never its values (a Signal's
    # message or a token hash can be among them, and errors are logged).
    return create_async_engine(
        url,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_pre_ping=pre_ping,
        # NB: JSON columns are decoded for every row of every list; orjson does it several times
        # faster than the standard library and yields the same values.
        json_deserializer=orjson.loads,
        connect_args={"timeout": 10, "command_timeout": 60},
    )


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # NB: let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # NB: busy_timeout first: switching a new file to WAL takes a lock, and several processes
        # opening the same new database at once must wait for it rather than fail "locked".
        for pragma in (
            "PRAGMA busy_timeout=30000",
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
