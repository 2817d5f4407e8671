"""Response and request bodies of ``/api/v1``: the public, versioned shapes scripts rely on.

They are read ``from_attributes`` off whatever the store returns (rows or records), so the
store's internals can change without the API's contract changing. Add fields; never rename.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

MAX_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id (64-bit)")]
IncidentState = Literal["open", "acknowledged", "resolved"]
SeverityName = Literal["info", "warning", "critical"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ClusterOut(_Out):
    id: str
    name: str
    detected_by: str = Field(default="", description="how its id was found: env, configmap, namespace_uid…")
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    watcher_health: dict[str, Any] = Field(default_factory=dict)
    status: Literal["connected", "stale", "unreachable"] = Field(
        default="connected",
        description="unreachable: its watcher stopped reporting; stale: nothing from it for 5 minutes",
    )
    watcher_status: str = Field(default="", description="what its watcher reports: ok, listing, stalled…")
    signals_behind: int | None = Field(
        default=None, description="Signals its watcher read and has not yet put on the bus, where known"
    )


class SignalOut(_Out):
    id: int
    cluster_id: str
    source: str
    kind: str
    namespace: str = ""
    name: str
    container: str = ""
    reason: str
    message: str = ""
    severity: str
    count: int = 1
    first_seen: str = ""
    last_seen: str = ""
    resolved: bool = False
    received_at: datetime | None = None


class ClusterDetail(ClusterOut):
    open_incidents: int = 0
    last_signal: SignalOut | None = None


class IncidentOut(_Out):
    id: int
    cluster_id: str
    namespace: str = ""
    object_kind: str
    object_name: str
    owner_kind: str = ""
    owner_name: str = ""
    reason: str
    root_cause: str = ""
    summary: str = ""
    severity: str
    state: str
    signal_count: int = 0
    event_count: int = 0
    first_seen: datetime
    last_seen: datetime
    affected_objects: list[dict[str, Any]] = Field(default_factory=list)
    acknowledged_at: datetime | None = None
    acknowledged_by: str = Field(default="", description="who acknowledged it (token name)")
    resolved_at: datetime | None = None
    resolved_by: str = ""
    resolution_note: str = ""
    reopen_count: int = 0
    report_version: int = 0
    updated_at: datetime | None = None
    version: int = Field(default=1, description="bumped on every change of the incident")
    upstream_id: int | None = Field(
        default=None, description="the incident this one follows from (its root cause is there)"
    )


class IncidentQuery(BaseModel):
    """The incident list's filters and page, from the query string (see ``api.query``)."""

    cluster: str | None = Field(default=None, max_length=253)
    namespace: str | None = Field(default=None, max_length=253)
    severity: SeverityName | None = None
    state: IncidentState | None = None
    reason: str | None = Field(default=None, max_length=128)
    q: str | None = Field(default=None, max_length=200, description="text in summary or object name")
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=200)


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None = Field(default=None, description="pass as ?cursor= for the next page")


class ReportOut(_Out):
    id: int
    incident_id: int
    version: int
    created_at: datetime
    root_cause: str = ""
    severity: str
    summary: str = ""
    document: dict[str, Any] = Field(default_factory=dict)
    markdown: str = ""
    source: Literal["rules", "investigation"] = Field(
        default="rules", description="who made this version: the rules engine or an investigation"
    )
    model: str = Field(default="", description="an investigation's model")
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    ending: str = Field(default="", description="why an investigation ended (docs/reasoning.md)")


class AuditOut(_Out):
    id: int
    at: datetime
    cluster_id: str = ""
    operation: str
    resource: str
    namespace: str = ""
    name: str = ""
    bytes: int = 0
    outcome: str = ""
    report_id: int | None = None


class SimilarIncident(BaseModel):
    id: int
    title: str
    root_cause: str = ""
    resolution_note: str = ""


class IncidentDetail(BaseModel):
    incident: IncidentOut
    reports: list[ReportOut]
    signals: list[SignalOut]
    audit: list[AuditOut]
    upstream: IncidentOut | None = Field(default=None, description="the incident its root cause is in")
    downstream: list[IncidentOut] = Field(
        default_factory=list, description="open incidents whose root cause is in this one"
    )


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=10_000, description="what was done; feeds the knowledge base")


class RediagnoseAccepted(BaseModel):
    incident_id: int
    msg_id: str = Field(description="the re-diagnose request Signal published on the bus")


class KnowledgeHit(BaseModel):
    id: int | None = None
    source: str
    slug: str
    title: str
    reason: str = ""
    root_cause: str = ""
    snippet: str = ""
    incident_id: int | None = None
    resolution: str = Field(default="", description="a past incident's: the note it was resolved with")


class RunbookSummary(BaseModel):
    slug: str
    title: str


class RunbookOut(RunbookSummary):
    markdown: str


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    prefix: str = ""
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=r"\S")
    role: Literal["viewer", "operator", "admin"]


class TokenCreated(TokenOut):
    token: str = Field(description="the secret, shown this once only")


class SinkOut(BaseModel):
    name: str
    kind: str
    target: str = Field(description="where it sends, with credentials removed")


class DiagnoseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    cluster_id: str | None = Field(
        default=None,
        max_length=253,
        validation_alias=AliasChoices("cluster_id", "cluster"),
        description="the cluster to read (also accepted as `cluster`); needed where several are read",
    )


InvestigationId = Annotated[
    str, Path(pattern="^[0-9a-f]{32}$", description="an investigation id (32 hex characters)")
]


class InvestigationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(default="", max_length=2000, description="what to find out (empty: the root cause)")


class FollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=2000, description="a follow-up in the same conversation")


class EvidenceOut(BaseModel):
    claim: str = ""
    quote: str = ""
    verified: bool = Field(
        default=False,
        description="the quote was found in what the tools returned (false: the model's word only)",
    )


class AnswerOut(BaseModel):
    summary: str = ""
    root_cause: str = "Unknown"
    evidence: list[EvidenceOut] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    kubectl: list[str] = Field(default_factory=list)
    ending: str = ""
    ending_detail: str = ""
    model: str = ""
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


class InvestigationOut(_Out):
    id: str
    incident_id: int
    cluster_id: str = ""
    status: Literal["running", "done"]
    trigger: str = Field(
        default="person", description="person (the API) or auto (a rules report said Unknown)"
    )
    requested_by: str = ""
    question: str = Field(default="", description="the latest question")
    created_at: datetime
    updated_at: datetime
    ending: str = Field(
        default="", description="why the latest turn ended: answered, cached, daily-budget, …"
    )
    model: str = ""
    tokens_in: int = Field(default=0, description="all turns together")
    tokens_out: int = 0
    cost: float = 0.0
    turns: int = 0
    report_version: int | None = Field(default=None, description="the report version of the latest answer")
    answer: AnswerOut | None = None
    progress: list[dict[str, Any]] = Field(default_factory=list)
