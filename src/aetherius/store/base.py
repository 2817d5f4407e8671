"""What every part of the Store shares: the engine, sessions, the clock, dialect switches."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Executable, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aetherius.config import NotificationSinkSettings
from aetherius.store.engine import StoreUnavailable

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_record(cls: type[T], row: object, **extra: Any) -> T:
    """Copy the dataclass ``cls``'s fields from an ORM row."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    values = {name: getattr(row, name) for name in names if name not in extra and hasattr(row, name)}
    return cls(**values, **extra)


def lock_key(text: str) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock`` derived from a string."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


_MAX_READ_SHAPES = 1024
# NB: what asyncpg raises on a connection that is gone (server restarted, backend terminated):
# closed, refused, or a protocol still consuming the server's farewell (InternalClientError).
_DRIVER_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


@dataclasses.dataclass(frozen=True, slots=True)
class _CompiledRead:
    """A statement as PostgreSQL SQL with positional binds, and where each bind's value comes from."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if name in params else self.constants[name] for name in self.names]


def _compile(statement: Executable, engine: AsyncEngine) -> _CompiledRead:
    compiled = statement.compile(dialect=engine.dialect)  # type: ignore[attr-defined]
    return _CompiledRead(
        sql=compiled.string, names=tuple(compiled.positiontup or ()), constants=dict(compiled.params)
    )


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class StoreBase:
    """Holds the engine; the operation mixins (incidents, signals, audit…) build on it."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        sinks: Sequence[NotificationSinkSettings] = (),
        wait_for_report: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        reader: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Single-statement reads (the dashboard's lists) need no transaction and no pre-ping: on
        # PostgreSQL the reader is an AUTOCOMMIT engine of its own pool, sparing each read four of
        # its five round trips (see ``read_rows``). NB: SQLite reads use the engine itself; its
        # connections are local and its begin hook must see every transaction (engine.py).
        self.reader: AsyncEngine = reader or engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.sinks = tuple(sinks)
        self.wait_for_report = wait_for_report
        self.clock = clock
        self._reads: dict[Hashable, tuple[Executable, _CompiledRead | None]] = {}

    async def read_rows(
        self, key: Hashable, build: Callable[[], Executable], params: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """All rows (positional, in the statement's column order) of one read-only statement.

        ``build`` makes the statement once per ``key``, which names its shape; ``params`` are the
        values of its named binds. On PostgreSQL the statement is also compiled once and run
        straight on the reader connection's asyncpg driver (its own prepared-statement cache):
        SQLAlchemy's per-execution work — cache key, execution context, a result processor per
        value — cost about four times the query itself on a 50-row page. Values come back as
        the ORM's would: asyncpg decodes ``timestamptz`` as UTC and the engine's JSON codec
        (orjson) decodes JSON. NB: only for columns with no result processor of their own beyond
        those two.

        A connection that died in the pool (the database restarted) is found by the query itself
        instead of a ping; it is invalidated and the read is retried once on a fresh connection.
        """
        statement, compiled = self._read_statement(key, build)
        for attempt in (1, 2):
            connection = self.reader.connect()
            try:
                await connection.start()
            except DBAPIError as exc:
                raise StoreUnavailable(f"cannot connect to the database: {_first_line(exc.orig)}") from exc
            try:
                if compiled is None:
                    return (await connection.execute(statement, dict(params))).all()
                driver: Any = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
                rows: Sequence[Sequence[Any]] = await driver.fetch(compiled.sql, *compiled.arguments(params))
                return rows
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
            except _DRIVER_CONNECTION_ERRORS as exc:
                await connection.invalidate()
                if attempt == 2:
                    raise StoreUnavailable(f"the database connection failed: {_first_line(exc)}") from exc
                # NB: as SQLAlchemy does on a disconnect: every pooled connection is suspect.
                await self.reader.dispose()
            finally:
                await connection.close()
        raise AssertionError("unreachable")

    def _read_statement(
        self, key: Hashable, build: Callable[[], Executable]
    ) -> tuple[Executable, _CompiledRead | None]:
        cached = self._reads.get(key)
        if cached is None:
            statement = build()
            compiled = _compile(statement, self.reader) if self.is_postgresql else None
            if len(self._reads) >= _MAX_READ_SHAPES:
                self._reads.clear()
            cached = self._reads[key] = (statement, compiled)
        return cached

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def insert(self, table: Any) -> Any:
        """A dialect ``INSERT`` that knows ``ON CONFLICT`` (both databases speak it)."""
        if self.is_postgresql:
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def advisory_lock(self, session: AsyncSession, key: str) -> None:
        """Serialize writers of one key until the transaction ends.

        NB: SQLite needs nothing here: every SQLite transaction begins IMMEDIATE (see engine.py).
        """
        if self.is_postgresql:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(key)})
