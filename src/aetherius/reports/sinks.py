"""What is sent where: the generic webhook (JSON, HMAC-SHA256 signed) and Slack (Block Kit).

The webhook signature follows the common timestamped scheme: ``X-Aetherius-Signature:
sha256=HEX(HMAC(secret, "<timestamp>.<body>"))`` with ``X-Aetherius-Timestamp`` in Unix seconds,
so a receiver can refuse replays older than a few minutes. ``X-Aetherius-Delivery`` is stable
across retries: delivery is at-least-once, and receivers de-duplicate on it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from aetherius.config import NotificationSinkSettings
from aetherius.store import Delivery, Incident, Report

SIGNATURE_HEADER = "X-Aetherius-Signature"
TIMESTAMP_HEADER = "X-Aetherius-Timestamp"
DELIVERY_HEADER = "X-Aetherius-Delivery"
EVENT_HEADER = "X-Aetherius-Event"
_SEVERITY_EMOJI = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
}
_EVENT_WORDS = {"new": "New incident", "reopened": "Incident reopened", "escalated": "Incident escalated"}


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (and what our tests do): constant-time comparison."""
    try:
        expected = sign(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)


def _affected(incident: Incident) -> str:
    what = f"{incident.owner_kind or incident.object_kind} {incident.namespace}/{incident.owner_name or incident.object_name}"
    return f"#{incident.id} {what} ({incident.reason})"


def webhook_payload(
    delivery: Delivery, incident: Incident, report: Report | None, *, affects: Sequence[Incident] = ()
) -> dict[str, Any]:
    return {
        "event": delivery.event,
        "delivery_id": delivery.id,
        # NB: also in ``incident``; at the top so a receiver serving many clusters routes on it.
        "cluster": incident.cluster_id,
        "incident": asdict(incident),
        "report": report.document if report else None,
        # The incidents whose root cause is this one (their own notices were folded into this).
        "affects": [{"id": i.id, "title": _affected(i), "summary": i.summary} for i in affects],
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(
    delivery: Delivery, incident: Incident, report: Report | None, *, affects: Sequence[Incident] = ()
) -> dict[str, Any]:
    target = f"{incident.owner_kind or incident.object_kind} {incident.namespace}/{incident.owner_name or incident.object_name}"
    root_cause = incident.root_cause or "not diagnosed yet"
    summary = (report.summary if report and report.summary else incident.summary) or incident.reason
    title = str((report.document.get("title") if report else "") or f"{incident.reason} in {target}")
    headline = f"{_EVENT_WORDS[delivery.event]} #{incident.id}: {title}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150], "emoji": True}},
        {
            "type": "section",
            "fields": [
                {
                    "type": "mrkdwn",
                    "text": f"*Severity*\n{_SEVERITY_EMOJI.get(incident.severity, '')} {incident.severity}",
                },
                {"type": "mrkdwn", "text": f"*Root cause*\n{_slack_escape(root_cause)}"},
                {"type": "mrkdwn", "text": f"*Cluster*\n{_slack_escape(incident.cluster_id)}"},
                {"type": "mrkdwn", "text": f"*Signals*\n{incident.signal_count}"},
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(summary)[:2900]}},
    ]
    if affects:
        lines = "\n".join(f"• {_slack_escape(_affected(i))}" for i in affects[:10])
        more = f"\n… and {len(affects) - 10} more" if len(affects) > 10 else ""
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*Affects {len(affects)}*\n{lines}{more}"},
            }
        )
    evidence = (report.document.get("evidence") if report else None) or []
    if evidence:
        lines = "\n".join(f"• `{_slack_escape(str(line))[:200]}`" for line in evidence[:5])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Evidence*\n{lines}"}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"first seen {incident.first_seen:%Y-%m-%d %H:%M:%S} UTC · Aetherius",
                }
            ],
        }
    )
    return {"text": _slack_escape(f"{headline}: {summary}"), "blocks": blocks}


def encode_request(
    sink: NotificationSinkSettings,
    delivery: Delivery,
    incident: Incident,
    report: Report | None,
    *,
    now: int,
    affects: Sequence[Incident] = (),
) -> tuple[bytes, dict[str, str]]:
    """The body and headers to POST for this delivery."""
    if sink.type == "slack":
        payload = slack_payload(delivery, incident, report, affects=affects)
        return json.dumps(payload, default=_json_default).encode(), {"Content-Type": "application/json"}
    body = json.dumps(
        webhook_payload(delivery, incident, report, affects=affects), default=_json_default, sort_keys=True
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Aetherius",
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.id),
        TIMESTAMP_HEADER: str(now),
    }
    secret = sink.resolved_secret()
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, now, body)
    return body, headers
