"""Reports and notifications.

``compose_report(store, retriever, incident_id=, findings=)`` builds a ``Report`` (summary, root
cause, severity, affected objects, evidence, timeline of Signals, recommendations, runbook,
similar past incidents) from findings in docs/diagnosis-contract.md's shape; ``save_report(store,
report)`` stores it as the incident's next version with its Markdown (``render_markdown``, the
template in ``templates/report.md.j2``) and JSON (``render_json``).

Notifications are queued by the store in the same transaction as the incident change (once per
new/reopened/escalated incident, never per Signal); ``NotificationDispatcher(store,
settings.notifications).run(stop)`` sends them to webhook (HMAC-signed) and Slack sinks, with
retries and backoff, restart-safe.
"""

from __future__ import annotations

from aetherius.reports.build import (
    InvalidFinding,
    build_report,
    compose_report,
    evidence_hash,
    parse_findings,
    primary_finding,
    save_report,
)
from aetherius.reports.dispatcher import NotificationDispatcher
from aetherius.reports.model import Finding, Report
from aetherius.reports.render import render_json, render_markdown
from aetherius.reports.sinks import sign, verify

__all__ = [
    "Finding",
    "InvalidFinding",
    "NotificationDispatcher",
    "Report",
    "build_report",
    "compose_report",
    "evidence_hash",
    "parse_findings",
    "primary_finding",
    "render_json",
    "render_markdown",
    "save_report",
    "sign",
    "verify",
]
