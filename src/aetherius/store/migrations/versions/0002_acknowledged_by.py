"""Who acknowledged an incident (``incidents.acknowledged_by``, next to ``acknowledged_at``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NB: a server default, so incidents acknowledged before this version read as "" (unknown).
    op.add_column(
        "incidents", sa.Column("acknowledged_by", sa.String(length=253), nullable=False, server_default="")
    )


def downgrade() -> None:
    op.drop_column("incidents", "acknowledged_by")
