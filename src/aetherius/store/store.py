"""``Store``: the one object through which every role reads and writes the database."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from aetherius.config import NotificationSinkSettings, Settings
from aetherius.store import migrate
from aetherius.store.audit import AuditOps
from aetherius.store.base import utcnow
from aetherius.store.batch import IncidentBatchOps
from aetherius.store.clusters import ClusterOps
from aetherius.store.cooldown import CooldownOps
from aetherius.store.engine import SchemaOutOfDate, StoreUnavailable, create_engine, describe, resolve_url
from aetherius.store.investigations import InvestigationOps
from aetherius.store.reports import ReportOps
from aetherius.store.retention import RetentionOps
from aetherius.store.sessions import SessionOps
from aetherius.store.story import StoryOps
from aetherius.store.tokens import TokenOps


def explain_connection_error(exc: BaseException) -> str:
    """The root cause of a failed connection, in a few words (never a traceback)."""
    cause: BaseException | None = exc
    while cause is not None:
        orig = getattr(cause, "orig", None)
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, TimeoutError | asyncio.TimeoutError):
            return "timed out"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        name = type(cause).__name__
        if name == "InvalidCatalogNameError":
            return "the database does not exist (create it first)"
        if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
            return "authentication failed"
        if orig is not None and orig is not cause:
            cause = orig
            continue
        cause = cause.__cause__ or cause.__context__
    text_ = str(exc).strip().splitlines()
    return text_[0] if text_ else type(exc).__name__


class Store(
    IncidentBatchOps,
    ReportOps,
    AuditOps,
    TokenOps,
    ClusterOps,
    CooldownOps,
    SessionOps,
    RetentionOps,
    StoryOps,
    InvestigationOps,
):
    """Async repository over the Aetherius schema; see the package docstring for the methods."""

    url: URL

    @classmethod
    async def open(
        cls,
        url: str = "",
        *,
        migrate_schema: bool = False,
        sinks: Sequence[NotificationSinkSettings] = (),
        wait_for_report: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        pool_size: int = 10,
    ) -> Store:
        """Connect, check (or, with ``migrate_schema``, bring up to date) the schema.

        Raises ``StoreUnavailable`` when the database does not answer and ``SchemaOutOfDate``
        when it is not at this version's head and may not be migrated.
        """
        resolved = resolve_url(url)
        engine = create_engine(resolved, pool_size=pool_size)
        try:
            async with _opening(resolved):
                await _check_schema(engine, resolved, migrate_schema=migrate_schema)
        except BaseException:
            await engine.dispose()
            raise
        reader = None
        if resolved.get_backend_name() == "postgresql":
            # NB: a fixed-size pool: a burst of reads waits for a connection (they take well under
            # a millisecond each) instead of opening more against the server's max_connections.
            reader = create_engine(resolved, pool_size=pool_size, pre_ping=False, max_overflow=0)
            reader = reader.execution_options(isolation_level="AUTOCOMMIT")
        store = cls(engine, sinks=sinks, wait_for_report=wait_for_report, clock=clock, reader=reader)
        store.url = resolved
        return store

    @classmethod
    async def from_settings(cls, settings: Settings, *, migrate_schema: bool | None = None) -> Store:
        """The store a role uses: URL, migrate-on-start and notification sinks from ``settings``."""
        return await cls.open(
            settings.database.url,
            migrate_schema=settings.database.migrate_on_start if migrate_schema is None else migrate_schema,
            sinks=settings.notifications.sinks,
            wait_for_report=settings.notifications.wait_for_report.total_seconds(),
        )

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers (readiness probes use it)."""
        await ping(self.engine, self.url)

    async def close(self) -> None:
        if self.reader is not self.engine:
            await self.reader.dispose()
        await self.engine.dispose()


@contextlib.asynccontextmanager
async def _opening(url: URL) -> AsyncIterator[None]:
    """Serialise opening (first connect, WAL switch, migration) of one SQLite file across processes.

    NB: SQLite answers "database is locked" at once, without waiting on busy_timeout, when two
    connections race to switch a new file to WAL or to upgrade a read lock; replicas starting
    together on one file take this lock file in turn instead. PostgreSQL needs none (its
    migrations take an advisory lock).
    """
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        yield
        return
    lock_file = await asyncio.to_thread(open, f"{database}.open-lock", "a")
    try:
        await asyncio.to_thread(fcntl.flock, lock_file.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        lock_file.close()  # closing releases the lock


async def _check_schema(engine: AsyncEngine, url: URL, *, migrate_schema: bool) -> None:
    await ping(engine, url)
    if migrate_schema:
        await migrate.upgrade(engine)
        return
    current, head = await migrate.current_revision(engine), migrate.head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema of {describe(url)} is at {current or 'nothing (empty)'}, "
            f"this Aetherius needs {head}: run `aetherius db upgrade`"
        )


async def ping(engine: AsyncEngine, url: URL) -> None:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # NB: drivers raise their own types (asyncpg, sqlite3, OSError)
        raise StoreUnavailable(f"cannot reach {describe(url)}: {explain_connection_error(exc)}") from exc
