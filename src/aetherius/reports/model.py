"""The Report: what a person needs to act on an incident, in one document.

Findings come in the shape of docs/diagnosis-contract.md (``kind``, ``namespace``, ``name``,
``owner``, ``container``, ``reason``, ``root_cause``, ``severity``, ``summary``, ``evidence``,
``recommendations``, ``runbook``); extra keys are kept, missing optional ones default, so a newer
engine adding fields does not break an older store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aetherius.signals import SEVERITY_RANK


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class OwnerRef(_Model):
    kind: str
    name: str


class LinkRef(_Model):
    kind: str
    namespace: str = ""
    name: str
    reason: str


class Finding(_Model):
    model_config = ConfigDict(frozen=True, extra="allow")

    kind: str
    namespace: str = ""
    name: str
    owner: OwnerRef | None = None
    container: str = ""
    reason: str
    root_cause: str = "Unknown"
    severity: str = "warning"
    summary: str = ""
    evidence: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    runbook: str = ""
    caused_by: LinkRef | None = None
    chain: list[str] = Field(default_factory=list)

    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.namespace, self.name, self.reason)

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        if value not in SEVERITY_RANK:
            raise ValueError(f"severity must be one of {', '.join(SEVERITY_RANK)}")
        return value


class AffectedObject(_Model):
    kind: str
    namespace: str = ""
    name: str


class TimelineEntry(_Model):
    at: datetime
    source: str
    kind: str
    namespace: str
    name: str
    reason: str
    message: str
    severity: str
    count: int = 1


class RunbookCitation(_Model):
    slug: str
    title: str
    source: str  # shipped | user


class SimilarIncidentCitation(_Model):
    incident_id: int
    title: str
    root_cause: str
    resolution: str = ""


class Report(_Model):
    incident_id: int
    cluster_id: str
    namespace: str
    title: str
    summary: str
    root_cause: str
    severity: str
    state: str
    first_seen: datetime
    last_seen: datetime
    generated_at: datetime
    affected_objects: list[AffectedObject] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    runbook: RunbookCitation | None = None
    similar_incidents: list[SimilarIncidentCitation] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The JSON form stored with each report version and served by the API."""
        return self.model_dump(mode="json")
