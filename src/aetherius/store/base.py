"""What every part of the Store shares: the engine, sessions, the clock, dialect switches."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aetherius.config import NotificationSinkSettings

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


class StoreBase:
    """Holds the engine; the operation mixins (incidents, signals, audit…) build on it."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        sinks: Sequence[NotificationSinkSettings] = (),
        wait_for_report: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Single-statement reads need no transaction: on PostgreSQL, AUTOCOMMIT spares each one a
        # BEGIN and a ROLLBACK round trip (same pool). NB: SQLite keeps the engine as it is; its
        # connections are local and its begin hook must see every transaction (engine.py).
        self.reader: AsyncEngine = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self.dialect == "postgresql" else engine
        )
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.sinks = tuple(sinks)
        self.wait_for_report = wait_for_report
        self.clock = clock

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
