"""The one schema, as SQLAlchemy tables, for PostgreSQL and SQLite alike.

The Alembic migrations in ``store/migrations`` create exactly this (a test compares them); the
full-text search objects (a tsvector column with a GIN index on PostgreSQL, an FTS5 table on
SQLite) live only in the migrations because they differ per database and no ORM query needs them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases.

    NB: SQLite has no timezone type and hands back naive values; we store UTC and re-attach it.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Big ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Counts and occurrences from outside (an Alertmanager occurrence is startsAt seconds x 2, ~3.6e9):
# 64-bit, like every integer the edge lets in (``signals.MAX_INT``).
BigCount = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

INCIDENT_STATES = ("open", "acknowledged", "resolved")
NOT_RESOLVED = text("state <> 'resolved'")


class Base(DeclarativeBase):
    pass


class ClusterRow(Base):
    __tablename__ = "clusters"

    id: Mapped[str] = mapped_column(String(253), primary_key=True)
    name: Mapped[str] = mapped_column(String(253))
    detected_by: Mapped[str] = mapped_column(String(64))  # config | kubeconfig | in-cluster | agent
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    watcher_health: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class SignalRow(Base):
    __tablename__ = "signals"
    __table_args__ = (
        UniqueConstraint("dedup_key", "occurrence", name="uq_signals_dedup"),
        Index("ix_signals_incident", "incident_id", "received_at"),
        Index("ix_signals_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(String(253))
    source: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(253), default="")
    name: Mapped[str] = mapped_column(String(253))
    uid: Mapped[str] = mapped_column(String(64), default="")
    owner_kind: Mapped[str] = mapped_column(String(64), default="")
    owner_name: Mapped[str] = mapped_column(String(253), default="")
    container: Mapped[str] = mapped_column(String(253), default="")
    reason: Mapped[str] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(128))
    occurrence: Mapped[int] = mapped_column(BigCount)
    count: Mapped[int] = mapped_column(BigCount, default=1)
    first_seen: Mapped[str] = mapped_column(String(40), default="")
    last_seen: Mapped[str] = mapped_column(String(40), default="")
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    resource_version: Mapped[str] = mapped_column(String(64), default="")
    labels: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    incident_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True
    )


class IncidentRow(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        # NB: the grouping guarantee: at most one unresolved incident per fingerprint, even with
        # several orchestrator replicas inserting at once.
        Index(
            "uq_incidents_open_fingerprint",
            "fingerprint",
            unique=True,
            postgresql_where=NOT_RESOLVED,
            sqlite_where=NOT_RESOLVED,
        ),
        Index("ix_incidents_fingerprint", "fingerprint", "resolved_at"),
        Index("ix_incidents_state_last_seen", "state", "last_seen", "id"),
        Index("ix_incidents_cluster_state", "cluster_id", "state", "last_seen", "id"),
        Index("ix_incidents_namespace_state", "namespace", "state", "last_seen", "id"),
        Index("ix_incidents_severity_state", "severity", "state", "last_seen", "id"),
        Index("ix_incidents_last_seen", "last_seen", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(String(253))
    namespace: Mapped[str] = mapped_column(String(253), default="")
    fingerprint: Mapped[str] = mapped_column(String(128))
    object_kind: Mapped[str] = mapped_column(String(64))
    object_name: Mapped[str] = mapped_column(String(253))
    owner_kind: Mapped[str] = mapped_column(String(64), default="")
    owner_name: Mapped[str] = mapped_column(String(253), default="")
    reason: Mapped[str] = mapped_column(String(128))
    root_cause: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="open")
    signal_count: Mapped[int] = mapped_column(BigCount, default=0)
    event_count: Mapped[int] = mapped_column(BigCount, default=0)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    affected_objects: Mapped[list[dict[str, str]]] = mapped_column(Json, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(253), default="", server_default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_by: Mapped[str] = mapped_column(String(253), default="")
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    report_version: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every change
    # The incident whose failure this one follows from (its diagnosis' chain ends there), or None.
    upstream_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)
    # The fingerprint its diagnosis named as upstream: an incident opened later under it adopts this.
    upstream_fingerprint: Mapped[str] = mapped_column(String(128), default="", server_default="", index=True)


class ReportRow(Base):
    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("incident_id", "version", name="uq_reports_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(BigId, ForeignKey("incidents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    root_cause: Mapped[str] = mapped_column(String(64), default="")
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text, default="")
    evidence_hash: Mapped[str] = mapped_column(String(64), default="")
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    markdown: Mapped[str] = mapped_column(Text, default="")
    # "rules" (the diagnosis engine) or "investigation" (the Reasoning Service's answer, which
    # never replaces the incident's root cause: a person reads both, told apart by this column).
    source: Mapped[str] = mapped_column(String(16), default="rules", server_default="rules")
    model: Mapped[str] = mapped_column(String(128), default="", server_default="")
    tokens_in: Mapped[int] = mapped_column(BigCount, default=0, server_default="0")
    tokens_out: Mapped[int] = mapped_column(BigCount, default=0, server_default="0")
    cost: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    ending: Mapped[str] = mapped_column(String(32), default="", server_default="")


class InvestigationRow(Base):
    """One investigation of an incident by the Reasoning Service, and its follow-up questions.

    Kept in the store (not a replica's memory) so that any API replica can answer its status,
    stream its progress and continue its conversation.
    """

    __tablename__ = "investigations"
    __table_args__ = (Index("ix_investigations_incident", "incident_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigId, ForeignKey("incidents.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(String(253), default="")
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done
    trigger: Mapped[str] = mapped_column(String(16), default="person")  # person | auto
    requested_by: Mapped[str] = mapped_column(String(253), default="")
    question: Mapped[str] = mapped_column(Text, default="")  # the latest question ("" at first)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ending: Mapped[str] = mapped_column(String(32), default="")
    model: Mapped[str] = mapped_column(String(128), default="")
    tokens_in: Mapped[int] = mapped_column(BigCount, default=0)  # all turns together
    tokens_out: Mapped[int] = mapped_column(BigCount, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    turns: Mapped[int] = mapped_column(Integer, default=0)  # answers given (first + follow-ups)
    report_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # of the latest answer
    answer: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # The pseudonymized conversation (messages, tool outputs, name map) a follow-up continues.
    conversation: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    progress: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)


class ReasoningAnswerRow(Base):
    """The answer cache where Redis is not configured: shared by replicas through the store."""

    __tablename__ = "reasoning_answers"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReasoningSpendRow(Base):
    """Tokens spent per cluster and UTC day, where Redis is not configured (the shared budget)."""

    __tablename__ = "reasoning_spend"

    cluster_id: Mapped[str] = mapped_column(String(253), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    tokens: Mapped[int] = mapped_column(BigCount, default=0)


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_incident", "incident_id", "at"),
        Index("ix_audit_scan", "scan_id", "at"),
        Index("ix_audit_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    cluster_id: Mapped[str] = mapped_column(String(253), default="")
    operation: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(128))
    namespace: Mapped[str] = mapped_column(String(253), default="")
    name: Mapped[str] = mapped_column(String(253), default="")
    bytes: Mapped[int] = mapped_column(BigCount, default=0)
    outcome: Mapped[str] = mapped_column(String(64), default="ok")
    incident_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    report_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    scan_id: Mapped[str] = mapped_column(String(64), default="")


class KnowledgeRow(Base):
    __tablename__ = "knowledge_documents"
    __table_args__ = (
        UniqueConstraint("source", "slug", name="uq_knowledge_slug"),
        Index("ix_knowledge_reason", "reason"),
        Index("ix_knowledge_root_cause", "root_cause"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))  # shipped | user | incident
    slug: Mapped[str] = mapped_column(String(253))
    title: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(128), default="")
    root_cause: Mapped[str] = mapped_column(String(64), default="")
    body: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=True
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliveryRow(Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sink: Mapped[str] = mapped_column(String(128))
    incident_id: Mapped[int] = mapped_column(BigId, ForeignKey("incidents.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))  # new | reopened | escalated
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")


class TokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator | admin
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EndedSessionRow(Base):
    """A dashboard session logged out before its cookie expired: the cookie is refused."""

    __tablename__ = "ended_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime())  # when its cookie would expire anyway


class CooldownRow(Base):
    __tablename__ = "cooldown_marks"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    evidence_hash: Mapped[str] = mapped_column(String(64), default="")
