"""Alembic migrations shipped inside the package, run programmatically.

There is no ``alembic.ini``: the migrations are part of Aetherius and run with
``aetherius db upgrade`` or, when ``database.migrate_on_start`` is set, when a role opens the store.
On PostgreSQL an advisory lock makes concurrent starts (three replicas at once) take turns.
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_MIGRATION_LOCK = 0x4165_7468_6D69_67  # "Aethmig": an advisory lock key of our own


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "aetherius.store:migrations")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the packaged migrations have no head revision")
    return head


def _run(connection: Connection, action: str, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_run, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_run, "downgrade", revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def autogenerate(connection: Connection, message: str, **kwargs: Any) -> None:
    """Write a new revision from the models (a developer tool; see ``docs/`` for when to use it)."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.revision(config, message=message, autogenerate=True, **kwargs)
