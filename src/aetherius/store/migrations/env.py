"""Alembic environment: migrations always run on a connection handed over by ``store.migrate``."""

from __future__ import annotations

from alembic import context

from aetherius.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Aetherius migrations run through `aetherius db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
