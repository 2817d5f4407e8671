"""What every part of the Store shares: the engine, sessions, the clock, dialect switches."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import text
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

    async def read_rows(self, statement: Any) -> Sequence[Any]:
        """All rows of one read-only statement, on the reader.

        A connection that died in the pool (the database restarted) is found by the query itself
        instead of a ping; SQLAlchemy then invalidates the pool and the read is retried once.
        """
        for attempt in (1, 2):
            connection = self.reader.connect()
            try:
                await connection.start()
            except DBAPIError as exc:
                raise StoreUnavailable(f"cannot connect to the database: {_first_line(exc.orig)}") from exc
            try:
                return (await connection.execute(statement)).all()
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
            finally:
                await connection.close()
        raise AssertionError("unreachable")

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
