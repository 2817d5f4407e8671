"""64-bit occurrences and counts (``signals.occurrence``/``count``, ``incidents.signal_count``/``event_count``).

An Alertmanager alert's occurrence is its ``startsAt`` in seconds, doubled (~3.6e9): on
PostgreSQL's 32-bit INTEGER every real alert failed to insert and was dead-lettered after the
webhook had answered 202. SQLite's INTEGER was always 64-bit, so only PostgreSQL changes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("signals", "occurrence"),
    ("signals", "count"),
    ("incidents", "signal_count"),
    ("incidents", "event_count"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
