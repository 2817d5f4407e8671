"""Reports built from contract-shaped findings, cited knowledge, rendered as JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aetherius.knowledge import StoreRetriever, sync_runbooks
from aetherius.reports import (
    InvalidFinding,
    compose_report,
    evidence_hash,
    parse_findings,
    render_json,
    render_markdown,
    save_report,
)
from aetherius.store import IncidentUpsert, Store
from tests.store.helpers import make_signal, unique, upsert_for

RUNBOOKS = Path(__file__).parents[1] / "knowledge" / "fixtures" / "shipped"

OOM_FINDING = {
    "kind": "Pod",
    "namespace": "shop",
    "name": "api-7d9f8-x2k4q",
    "owner": {"kind": "Deployment", "name": "api"},
    "container": "api",
    "reason": "CrashLoopBackOff",
    "root_cause": "OutOfMemory",
    "severity": "critical",
    "summary": "Container api is killed for exceeding its 256Mi memory limit and restarts in a loop (12 restarts).",
    "evidence": [
        "lastState.terminated.reason=OOMKilled exitCode=137",
        "limits.memory=256Mi",
        "event BackOff x41",
    ],
    "recommendations": ["Raise resources.limits.memory above the working set, or find the leak."],
    "runbook": "oom-killed",
    "future_field": {"kept": True},
}


def test_findings_are_validated_with_a_message_naming_the_field() -> None:
    parsed = parse_findings([OOM_FINDING])
    assert parsed[0].owner is not None and parsed[0].owner.name == "api"
    with pytest.raises(InvalidFinding, match=r"finding 0: severity: Value error, severity must be one of"):
        parse_findings([{**OOM_FINDING, "severity": "urgent"}])
    with pytest.raises(InvalidFinding, match=r"finding 1: reason: Field required"):
        parse_findings([OOM_FINDING, {"kind": "Pod", "name": "x"}])
    a = evidence_hash(parse_findings([OOM_FINDING]))
    b = evidence_hash(
        parse_findings([{**OOM_FINDING, "evidence": [*OOM_FINDING["evidence"], "restarts=13"]}])
    )
    assert a != b and a == evidence_hash(parse_findings([dict(OOM_FINDING)]))


async def test_a_report_cites_its_runbook_and_similar_incidents(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        await sync_runbooks(store, shipped_dir=RUNBOOKS)
        cluster = unique("prod")
        past = await store.upsert_incident(
            IncidentUpsert(
                cluster_id=cluster,
                fingerprint=unique("fp"),
                namespace="shop",
                object_kind="Pod",
                object_name="api-old",
                reason="CrashLoopBackOff",
                root_cause="OutOfMemory",
                severity="critical",
                summary="Container api killed for exceeding its memory limit",
            )
        )
        assert past.incident is not None
        await store.resolve_incident(past.incident.id, by="alice", note="raised limit to 512Mi")

        fingerprint = unique("fp")
        signals = [
            make_signal(cluster=cluster, pod="api-7d9f8-x2k4q", reason="BackOff", occurrence=i)
            for i in (1, 2)
        ]
        change = None
        for signal in signals:
            change = await store.upsert_incident(upsert_for(signal, fingerprint=fingerprint), signal=signal)
        assert change is not None and change.incident is not None
        incident_id = change.incident.id

        report = await compose_report(
            store, StoreRetriever(store), incident_id=incident_id, findings=[OOM_FINDING]
        )
        assert report.root_cause == "OutOfMemory" and report.severity == "critical"
        assert report.runbook is not None and report.runbook.slug == "oom-killed"
        assert [s.incident_id for s in report.similar_incidents] == [past.incident.id]
        assert report.similar_incidents[0].resolution == "raised limit to 512Mi"
        assert len(report.timeline) == 2 and report.timeline[0].reason == "BackOff"
        assert report.evidence[0] == "lastState.terminated.reason=OOMKilled exitCode=137"

        document = json.loads(render_json(report))
        assert document["findings"][0]["future_field"] == {"kept": True}
        markdown = render_markdown(report)
        assert markdown.startswith("# Out of memory: Deployment shop/api\n")
        for expected in (
            "**Root cause: OutOfMemory.** Container api is killed for exceeding its 256Mi",
            "- `limits.memory=256Mi`",
            "1. Raise resources.limits.memory",
            "[Container killed for exceeding its memory limit](runbook:oom-killed)",
            f"- #{past.incident.id} ",
            "| BackOff |",
        ):
            assert expected in markdown, expected
        assert "\n\n\n" not in markdown

        stored = await save_report(store, report)
        again = await save_report(store, report)
        assert (stored.version, again.version) == (1, 2)
        assert stored.markdown == markdown and stored.document["root_cause"] == "OutOfMemory"
        incident = await store.get_incident(incident_id)
        assert incident.root_cause == "OutOfMemory" and incident.summary.startswith("Container api is killed")
    finally:
        await store.close()


async def test_a_report_without_findings_says_unknown(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        signal = make_signal(cluster=unique("c"), pod="web-1", reason="FailedScheduling", severity="warning")
        change = await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
        assert change.incident is not None
        report = await compose_report(
            store, StoreRetriever(store), incident_id=change.incident.id, findings=[]
        )
        assert report.root_cause == "Unknown" and report.runbook is None and report.similar_incidents == []
        markdown = render_markdown(report)
        assert "## Runbook" not in markdown and "**Root cause: Unknown.**" in markdown
    finally:
        await store.close()
