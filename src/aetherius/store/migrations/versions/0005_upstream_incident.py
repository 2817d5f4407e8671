"""Causal links between incidents (``incidents.upstream_id``): a downstream incident names the
incident its root cause is in, so a person sees one problem and gets one notification.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("upstream_id", _BIG, nullable=True))
        batch.add_column(
            sa.Column("upstream_fingerprint", sa.String(length=128), nullable=False, server_default="")
        )
        batch.create_index("ix_incidents_upstream_id", ["upstream_id"])
        batch.create_index("ix_incidents_upstream_fingerprint", ["upstream_fingerprint"])


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index("ix_incidents_upstream_fingerprint")
        batch.drop_index("ix_incidents_upstream_id")
        batch.drop_column("upstream_fingerprint")
        batch.drop_column("upstream_id")
