"""Initial schema: clusters, signals, incidents, reports, audit, knowledge, deliveries, tokens.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from aetherius.store.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("cluster_id", sa.String(length=253), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=128), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("bytes", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("report_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("scan_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_incident", ["incident_id", "at"], unique=False)
        batch_op.create_index("ix_audit_scan", ["scan_id", "at"], unique=False)

    op.create_table(
        "clusters",
        sa.Column("id", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("detected_by", sa.String(length=64), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column(
            "watcher_health",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "cooldown_marks",
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.Column("evidence_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "incidents",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("cluster_id", sa.String(length=253), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("object_kind", sa.String(length=64), nullable=False),
        sa.Column("object_name", sa.String(length=253), nullable=False),
        sa.Column("owner_kind", sa.String(length=64), nullable=False),
        sa.Column("owner_name", sa.String(length=253), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("root_cause", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("signal_count", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column(
            "affected_objects",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=253), nullable=False),
        sa.Column("resolution_note", sa.Text(), nullable=False),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("report_version", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incidents_cluster_state", ["cluster_id", "state", "last_seen", "id"], unique=False
        )
        batch_op.create_index("ix_incidents_fingerprint", ["fingerprint", "resolved_at"], unique=False)
        batch_op.create_index("ix_incidents_last_seen", ["last_seen", "id"], unique=False)
        batch_op.create_index(
            "ix_incidents_namespace_state", ["namespace", "state", "last_seen", "id"], unique=False
        )
        batch_op.create_index(
            "ix_incidents_severity_state", ["severity", "state", "last_seen", "id"], unique=False
        )
        batch_op.create_index("ix_incidents_state_last_seen", ["state", "last_seen", "id"], unique=False)
        batch_op.create_index(
            "uq_incidents_open_fingerprint",
            ["fingerprint"],
            unique=True,
            postgresql_where=sa.text("state <> 'resolved'"),
            sqlite_where=sa.text("state <> 'resolved'"),
        )

    op.create_table(
        "knowledge_documents",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("slug", sa.String(length=253), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("root_cause", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "slug", name="uq_knowledge_slug"),
    )
    with op.batch_alter_table("knowledge_documents", schema=None) as batch_op:
        batch_op.create_index("ix_knowledge_reason", ["reason"], unique=False)
        batch_op.create_index("ix_knowledge_root_cause", ["root_cause"], unique=False)
    _create_search()

    op.create_table(
        "notification_deliveries",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("sink", sa.String(length=128), nullable=False),
        sa.Column("incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_due", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "reports",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("root_cause", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("evidence_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "version", name="uq_reports_version"),
    )
    op.create_table(
        "signals",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("cluster_id", sa.String(length=253), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("owner_kind", sa.String(length=64), nullable=False),
        sa.Column("owner_name", sa.String(length=253), nullable=False),
        sa.Column("container", sa.String(length=253), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("dedup_key", sa.String(length=128), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.String(length=40), nullable=False),
        sa.Column("last_seen", sa.String(length=40), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("resource_version", sa.String(length=64), nullable=False),
        sa.Column(
            "labels",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key", "occurrence", name="uq_signals_dedup"),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index("ix_signals_incident", ["incident_id", "received_at"], unique=False)
        batch_op.create_index("ix_signals_received", ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index("ix_signals_received")
        batch_op.drop_index("ix_signals_incident")

    op.drop_table("signals")
    op.drop_table("reports")
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_due")

    op.drop_table("notification_deliveries")
    with op.batch_alter_table("knowledge_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_knowledge_root_cause")
        batch_op.drop_index("ix_knowledge_reason")

    _drop_search()
    op.drop_table("knowledge_documents")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_incidents_open_fingerprint",
            postgresql_where=sa.text("state <> 'resolved'"),
            sqlite_where=sa.text("state <> 'resolved'"),
        )
        batch_op.drop_index("ix_incidents_state_last_seen")
        batch_op.drop_index("ix_incidents_severity_state")
        batch_op.drop_index("ix_incidents_namespace_state")
        batch_op.drop_index("ix_incidents_last_seen")
        batch_op.drop_index("ix_incidents_fingerprint")
        batch_op.drop_index("ix_incidents_cluster_state")

    op.drop_table("incidents")
    op.drop_table("cooldown_marks")
    op.drop_table("clusters")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_scan")
        batch_op.drop_index("ix_audit_incident")
        batch_op.drop_index("ix_audit_at")

    op.drop_table("audit_log")
    op.drop_table("api_tokens")


# Full-text search differs per database: a weighted tsvector with a GIN index on PostgreSQL, an
# external-content FTS5 table kept current by triggers on SQLite.
_PG_SEARCH = """
ALTER TABLE knowledge_documents ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(title, '')), 'A')
    || setweight(to_tsvector('simple', coalesce(reason, '') || ' ' || coalesce(root_cause, '')), 'A')
    || setweight(to_tsvector('english', coalesce(body, '')), 'B')
) STORED
"""
_SQLITE_SEARCH = (
    """CREATE VIRTUAL TABLE knowledge_fts USING fts5(
        title, reason, root_cause, body,
        content='knowledge_documents', content_rowid='id', tokenize='porter unicode61')""",
    """CREATE TRIGGER knowledge_fts_insert AFTER INSERT ON knowledge_documents BEGIN
        INSERT INTO knowledge_fts(rowid, title, reason, root_cause, body)
        VALUES (new.id, new.title, new.reason, new.root_cause, new.body);
    END""",
    """CREATE TRIGGER knowledge_fts_delete AFTER DELETE ON knowledge_documents BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, title, reason, root_cause, body)
        VALUES ('delete', old.id, old.title, old.reason, old.root_cause, old.body);
    END""",
    """CREATE TRIGGER knowledge_fts_update AFTER UPDATE ON knowledge_documents BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, title, reason, root_cause, body)
        VALUES ('delete', old.id, old.title, old.reason, old.root_cause, old.body);
        INSERT INTO knowledge_fts(rowid, title, reason, root_cause, body)
        VALUES (new.id, new.title, new.reason, new.root_cause, new.body);
    END""",
)


def _create_search() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_SEARCH)
        op.execute("CREATE INDEX ix_knowledge_search ON knowledge_documents USING GIN (search)")
    else:
        for statement in _SQLITE_SEARCH:
            op.execute(statement)


def _drop_search() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_knowledge_search")
        op.execute("ALTER TABLE knowledge_documents DROP COLUMN search")
    else:
        for name in ("knowledge_fts_update", "knowledge_fts_delete", "knowledge_fts_insert"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE knowledge_fts")
