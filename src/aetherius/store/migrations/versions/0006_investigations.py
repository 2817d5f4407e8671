"""Investigations by the Reasoning Service: report versions that say who made them (rules or an
investigation, with model, tokens and cost), the investigations themselves, and the answer cache
and per-cluster daily token spend for installations without Redis.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from aetherius.store.models import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="rules"))
        batch.add_column(sa.Column("model", sa.String(length=128), nullable=False, server_default=""))
        batch.add_column(sa.Column("tokens_in", _BIG, nullable=False, server_default="0"))
        batch.add_column(sa.Column("tokens_out", _BIG, nullable=False, server_default="0"))
        batch.add_column(sa.Column("cost", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ending", sa.String(length=32), nullable=False, server_default=""))
    op.create_table(
        "investigations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("incident_id", _BIG, nullable=False),
        sa.Column("cluster_id", sa.String(length=253), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=253), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("ending", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("tokens_in", _BIG, nullable=False),
        sa.Column("tokens_out", _BIG, nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("report_version", sa.Integer(), nullable=True),
        sa.Column("answer", _JSON, nullable=False),
        sa.Column("conversation", _JSON, nullable=False),
        sa.Column("progress", _JSON, nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_investigations_incident", "investigations", ["incident_id", "created_at"])
    op.create_table(
        "reasoning_answers",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "reasoning_spend",
        sa.Column("cluster_id", sa.String(length=253), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("tokens", _BIG, nullable=False),
        sa.PrimaryKeyConstraint("cluster_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("reasoning_spend")
    op.drop_table("reasoning_answers")
    op.drop_index("ix_investigations_incident", table_name="investigations")
    op.drop_table("investigations")
    with op.batch_alter_table("reports") as batch:
        for column in ("ending", "cost", "tokens_out", "tokens_in", "model", "source"):
            batch.drop_column(column)
