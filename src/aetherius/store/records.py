"""What the store takes and gives: plain frozen dataclasses, never live ORM rows.

Callers (orchestrator, API, CLI) never hold a session, so nothing they keep can lazy-load or go
stale behind their back; the API serializes these directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

IncidentState = Literal["open", "acknowledged", "resolved"]
NotificationEvent = Literal["new", "reopened", "escalated"]
Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    id: str
    name: str
    detected_by: str
    first_seen: datetime
    last_seen: datetime
    watcher_health: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRecord:
    id: int
    cluster_id: str
    source: str
    kind: str
    namespace: str
    name: str
    owner_kind: str
    owner_name: str
    container: str
    reason: str
    message: str
    severity: str
    dedup_key: str
    occurrence: int
    count: int
    first_seen: str
    last_seen: str
    resolved: bool
    received_at: datetime
    incident_id: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedSignal:
    """The outcome of ``record_signal``: its row id, or ``duplicate`` when it was already stored."""

    id: int | None
    duplicate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentUpsert:
    """One observation of a failure, as the orchestrator's grouping sees it.

    ``fingerprint`` is the grouping key (cluster, owner workload or object, reason/root cause);
    ``affected`` are the objects this observation involves (merged into the incident's set).
    """

    cluster_id: str
    fingerprint: str
    namespace: str
    object_kind: str
    object_name: str
    reason: str
    severity: str
    owner_kind: str = ""
    owner_name: str = ""
    root_cause: str = ""
    summary: str = ""
    affected: tuple[tuple[str, str, str], ...] = ()  # (kind, namespace, name)
    event_count: int = 1
    seen_at: datetime | None = None  # when it was observed (default: now)


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident:
    id: int
    cluster_id: str
    namespace: str
    fingerprint: str
    object_kind: str
    object_name: str
    owner_kind: str
    owner_name: str
    reason: str
    root_cause: str
    summary: str
    severity: str
    state: IncidentState
    signal_count: int
    event_count: int
    first_seen: datetime
    last_seen: datetime
    affected_objects: list[dict[str, str]]
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str
    resolved_at: datetime | None
    resolved_by: str
    resolution_note: str
    reopen_count: int
    report_version: int
    version: int
    upstream_id: int | None = None
    upstream_fingerprint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentChange:
    """What ``upsert_incident`` did; ``events`` are the notifications it queued (never per Signal)."""

    incident: Incident | None  # None only when the Signal was a duplicate
    created: bool = False
    reopened: bool = False
    escalated: bool = False
    duplicate: bool = False
    signal_id: int | None = None
    events: tuple[NotificationEvent, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentFilters:
    cluster_id: str | None = None
    namespace: str | None = None
    severity: str | None = None
    state: IncidentState | None = None
    unresolved: bool = False  # open or acknowledged
    reason: str | None = None
    root_cause: str | None = None
    text: str | None = None  # substring of summary, object, owner, reason


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentPage:
    items: list[Incident]
    next_cursor: str | None  # pass back as ``cursor`` for the next (older) page


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentRows:
    """A page of ``list_incident_rows``: rows of values in ``columns`` order (then, when not asked
    for, ``last_seen`` and ``id``), for callers that serialize them without building records."""

    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    id: int
    incident_id: int
    version: int
    created_at: datetime
    root_cause: str
    severity: str
    summary: str
    evidence_hash: str
    document: dict[str, Any]
    markdown: str
    source: str = "rules"  # or "investigation": the Reasoning Service's answer
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    ending: str = ""  # an investigation's ending ("answered", "daily-budget", …)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One Execution Gateway read, as the gateway reports it."""

    operation: str
    resource: str
    namespace: str = ""
    name: str = ""
    bytes: int = 0
    outcome: str = "ok"
    cluster_id: str = ""
    incident_id: int | None = None
    report_id: int | None = None
    scan_id: str = ""
    at: datetime | None = None  # default: now


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    id: int
    at: datetime
    cluster_id: str
    operation: str
    resource: str
    namespace: str
    name: str
    bytes: int
    outcome: str
    incident_id: int | None
    report_id: int | None
    scan_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiToken:
    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown once; only its hash is stored


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    id: int
    sink: str
    incident_id: int
    event: NotificationEvent
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KnowledgeDocument:
    id: int
    source: str  # shipped | user | incident
    slug: str
    title: str
    reason: str
    root_cause: str
    body: str
    incident_id: int | None
    updated_at: datetime
    score: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    signals: int = 0
    audit: int = 0
    cooldowns: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentStory:
    """What the incident page shows, read in one consistent snapshot."""

    incident: Incident
    reports: list[Report]  # newest version first
    signals: list[SignalRecord]  # oldest first
    audit: list[AuditRecord]  # in the order the reads happened


@dataclass(frozen=True, slots=True, kw_only=True)
class InvestigationRecord:
    """One investigation of an incident (``store.investigations``); tokens and cost of every turn."""

    id: str
    incident_id: int
    cluster_id: str
    status: str  # running | done
    trigger: str  # person | auto
    requested_by: str
    question: str
    created_at: datetime
    updated_at: datetime
    ending: str
    model: str
    tokens_in: int
    tokens_out: int
    cost: float
    turns: int
    report_version: int | None
    answer: dict[str, Any]
    conversation: dict[str, Any]
    progress: list[dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningSpend:
    """One cluster's investigations touched since a time, and their tokens and cost (all turns)."""

    cluster_id: str
    investigations: int
    tokens_in: int
    tokens_out: int
    cost: float
