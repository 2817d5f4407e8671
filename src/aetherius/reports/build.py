"""Building a Report for an incident from the engine's findings, the Signals and the knowledge base.

``compose_report`` gathers what a report cites (the incident's timeline, its runbook, up to three
similar past incidents); ``build_report`` is the pure part, so it is testable without a database;
``save_report`` stores the next version, JSON and Markdown side by side.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from aetherius.diagnosis.chains import root_of
from aetherius.diagnosis.model import CAUSE_WORDS
from aetherius.knowledge import KnowledgeRetriever, RunbookRef, SimilarIncident
from aetherius.reports.model import (
    AffectedObject,
    Finding,
    Report,
    RunbookCitation,
    SimilarIncidentCitation,
    TimelineEntry,
)
from aetherius.reports.render import render_markdown
from aetherius.signals import SEVERITY_RANK
from aetherius.store import Incident, SignalRecord, Store
from aetherius.store import Report as StoredReport


class InvalidFinding(ValueError):
    """A finding that does not have the contract's shape; the message names the field."""


def parse_findings(findings: Iterable[Mapping[str, Any]]) -> list[Finding]:
    parsed: list[Finding] = []
    for index, raw in enumerate(findings):
        try:
            parsed.append(Finding.model_validate(dict(raw)))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "(finding)"
            raise InvalidFinding(f"finding {index}: {where}: {error['msg']}") from None
    return parsed


# Reasons that report a consequence of another finding (a Deployment is unavailable *because* its
# pods crash): a report leads with the cause, and keeps these as context.
CONSEQUENCE_REASONS = frozenset(
    {"DeploymentUnavailable", "StatefulSetUnavailable", "DaemonSetUnavailable", "ServiceNoEndpoints"}
)


def finding_rank(
    *, reason: str, root_cause: str, severity: str, evidence: int
) -> tuple[bool, bool, int, int]:
    """How strongly a finding should lead: a known root cause, a cause rather than a consequence,
    then severity and the weight of evidence. Reports and the orchestrator both rank with this."""
    return (
        root_cause != "Unknown",
        reason not in CONSEQUENCE_REASONS,
        SEVERITY_RANK.get(severity, 0),
        evidence,
    )


def primary_finding(findings: Sequence[Finding]) -> Finding | None:
    """The finding the report leads with: the root of the strongest finding's chain (see
    ``finding_rank``): the first broken thing, not the symptom that triggered the incident."""
    if not findings:
        return None
    lead = max(
        findings,
        key=lambda f: finding_rank(
            reason=f.reason, root_cause=f.root_cause, severity=f.severity, evidence=len(f.evidence)
        ),
    )
    return root_of(lead, {f.key(): f for f in findings})


def headline(lead: Finding | None, *, subject: str, reason: str) -> str:
    """The root cause in words and where it is ("Out of memory: StatefulSet db/postgres"); the
    incident's own workload after it when the root is elsewhere. Never the triggering Event's
    reason ("BackOff") when a diagnosis says more."""
    if lead is None or lead.root_cause == "Unknown":
        return f"{lead.reason if lead else reason} in {subject}"
    words = CAUSE_WORDS.get(lead.root_cause, lead.root_cause)
    where = (
        f"{lead.owner.kind} {lead.namespace}/{lead.owner.name}"
        if lead.owner is not None
        else f"{lead.kind} {lead.namespace}/{lead.name}"
        if lead.namespace
        else f"{lead.kind} {lead.name}"
    )
    own = where.split(" ", 1)[0] + " " + where.rsplit("/", 1)[-1] == subject
    return f"{words[:1].upper()}{words[1:]}: {where}" + ("" if own else f" — {subject} depends on it")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def build_report(
    *,
    incident: Incident,
    findings: Sequence[Finding],
    signals: Sequence[SignalRecord] = (),
    runbook: RunbookRef | None = None,
    similar: Sequence[SimilarIncident] = (),
    generated_at: datetime | None = None,
) -> Report:
    lead = primary_finding(findings)
    subject = f"{incident.owner_kind or incident.object_kind} {incident.owner_name or incident.object_name}"
    root_cause = lead.root_cause if lead else (incident.root_cause or "Unknown")
    summary = (
        lead.summary if lead and lead.summary else (incident.summary or f"{incident.reason} on {subject}.")
    )
    severities = [incident.severity, *(f.severity for f in findings)]
    affected = [
        AffectedObject(kind=o["kind"], namespace=o.get("namespace", ""), name=o["name"])
        for o in incident.affected_objects
    ]
    for finding in findings:
        obj = AffectedObject(kind=finding.kind, namespace=finding.namespace, name=finding.name)
        if obj not in affected:
            affected.append(obj)
    ordered = sorted(findings, key=lambda f: f is not lead)  # the lead's evidence first
    return Report(
        incident_id=incident.id,
        cluster_id=incident.cluster_id,
        namespace=incident.namespace,
        title=headline(lead, subject=subject, reason=incident.reason),
        summary=summary,
        root_cause=root_cause,
        severity=max(severities, key=lambda s: SEVERITY_RANK.get(s, 0)),
        state=incident.state,
        first_seen=incident.first_seen,
        last_seen=incident.last_seen,
        generated_at=generated_at or datetime.now(UTC),
        affected_objects=affected,
        evidence=_unique([*(line for f in ordered for line in f.evidence), *_node_agent_evidence(signals)]),
        timeline=[
            TimelineEntry(
                at=s.received_at,
                source=s.source,
                kind=s.kind,
                namespace=s.namespace,
                name=s.name,
                reason=s.reason,
                message=s.message,
                severity=s.severity,
                count=s.count,
            )
            for s in signals
        ],
        recommendations=_unique(line for f in ordered for line in f.recommendations),
        runbook=RunbookCitation(slug=runbook.slug, title=runbook.title, source=runbook.source)
        if runbook
        else None,
        similar_incidents=[
            SimilarIncidentCitation(
                incident_id=s.incident_id, title=s.title, root_cause=s.root_cause, resolution=s.resolution
            )
            for s in similar
        ],
        findings=list(findings),
    )


def _node_agent_evidence(signals: Sequence[SignalRecord]) -> list[str]:
    """What the node agent saw (a kernel OOM kill, pressure before eviction): evidence the API
    server never had, cited with the rules' evidence (the newest three)."""
    seen = [s for s in signals if s.source == "node-agent"]
    return [f"node agent ({s.reason}): {s.message}"[:400] for s in seen[-3:]]


def evidence_hash(findings: Sequence[Finding]) -> str:
    """Stable across runs: the orchestrator re-diagnoses within a cooldown only when this changes."""
    material = sorted(
        (f.kind, f.namespace, f.name, f.reason, f.root_cause, tuple(sorted(f.evidence))) for f in findings
    )
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()


async def compose_report(
    store: Store,
    retriever: KnowledgeRetriever,
    *,
    incident_id: int,
    findings: Iterable[Mapping[str, Any]],
    similar_limit: int = 3,
) -> Report:
    """The report for an incident, with its timeline and what the knowledge base can cite."""
    parsed = parse_findings(findings)
    incident = await store.get_incident(incident_id)
    lead = primary_finding(parsed)
    reason = lead.reason if lead else incident.reason
    root_cause = lead.root_cause if lead else incident.root_cause
    runbook = await retriever.runbook_for(
        reason=reason, root_cause=root_cause, slug=lead.runbook if lead else ""
    )
    similar = await retriever.similar_incidents(
        text=(lead.summary if lead else "") or incident.summary,
        reason=reason,
        root_cause=root_cause,
        exclude_incident=incident.id,
        limit=similar_limit,
    )
    signals = await store.incident_signals(incident_id)
    return build_report(incident=incident, findings=parsed, signals=signals, runbook=runbook, similar=similar)


async def save_report(store: Store, report: Report) -> StoredReport:
    """Store the report as the incident's next version (releasing its held notifications)."""
    return await store.add_report(
        report.incident_id,
        document=report.document(),
        markdown=render_markdown(report),
        root_cause=report.root_cause,
        severity=report.severity,
        summary=report.summary,
        evidence_hash=evidence_hash(report.findings),
    )
