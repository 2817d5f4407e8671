"""Resolving and re-diagnose Signals, and an incident that follows its latest report (real store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from aetherius.config import OrchestratorSettings
from aetherius.orchestrator.cooldown import MemoryCooldown
from aetherius.orchestrator.inconclusive import INCONCLUSIVE_RETRIES, RETRY_ATTEMPTS, InconclusiveRetry
from aetherius.orchestrator.model import Incident, ReportDraft
from aetherius.orchestrator.ratelimit import MemoryRateLimiter
from aetherius.orchestrator.resolver import Resolver
from aetherius.orchestrator.service import REDIAGNOSE_LABEL, SIGNAL_RETRIES, Orchestrator, Outcome
from aetherius.orchestrator.storage import StoreRepository
from aetherius.signals import Signal, dedup_key
from aetherius.store import IncidentFilters, Store
from tests.orchestrator.factories import pod_signal
from tests.store.databases import BACKENDS, db_url_fixture


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from db_url_fixture(request, tmp_path_factory)


class Scripted:
    """Answers with the next root cause of its script (the engine's finding for it)."""

    def __init__(self, *causes: tuple[str, str, str]) -> None:
        self.causes = list(causes)
        self.calls = 0

    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        reason, root_cause, severity = self.causes[min(self.calls, len(self.causes) - 1)]
        self.calls += 1
        if root_cause == "Unknown":
            return ReportDraft(
                summary="no failure seen", root_cause="Unknown", severity=incident.severity, findings=[]
            )
        finding: dict[str, Any] = {
            "kind": "Pod",
            "namespace": "shop",
            "name": "api-7d9f8c6b5-x2k4q",
            "reason": reason,
            "root_cause": root_cause,
            "severity": severity,
            "summary": f"{reason}: {root_cause}",
            "evidence": [f"reason={reason}"],
            "recommendations": [],
        }
        return ReportDraft(
            summary=finding["summary"],
            root_cause=root_cause,
            severity=severity,
            findings=[finding],
            reason=reason,
        )


def build(store: Store, diagnoser: Scripted) -> Orchestrator:
    return Orchestrator(
        repository=StoreRepository(store),
        diagnoser=diagnoser,
        cooldown=MemoryCooldown(),
        limiter=MemoryRateLimiter(per_minute=6000, burst=100),
        settings=OrchestratorSettings(),
    )


def rediagnose(incident_id: str, *, at: int) -> Signal:
    return Signal(
        cluster_id="test",
        source="api",
        object=pod_signal(reason="x").object,
        reason="RediagnoseRequested",
        message="requested",
        severity="warning",
        dedup_key=dedup_key("rediagnose", incident_id),
        occurrence=at,
        labels={REDIAGNOSE_LABEL: incident_id, "aetherius.io/requested-by": "ops"},
    )


async def test_incident_reason_and_root_cause_follow_the_latest_report(store: Store) -> None:
    diagnoser = Scripted(("ImagePullBackOff", "ImageNotFound", "critical"))
    orch = build(store, diagnoser)
    first = await orch.handle(pod_signal(reason="Failed", message="Failed to pull image", cluster="reason"))
    assert first.outcome is Outcome.DIAGNOSED and first.incident_id is not None
    stored = await store.get_incident(int(first.incident_id))
    assert (stored.reason, stored.root_cause, stored.severity) == (
        "ImagePullBackOff",
        "ImageNotFound",
        "critical",  # the report's: the diagnosis knew better than the warning Event
    )
    again = await orch.handle(
        pod_signal(reason="Failed", message="Failed to pull image", cluster="reason", occurrence=2)
    )
    assert again.outcome is Outcome.RECORDED
    stored = await store.get_incident(int(first.incident_id))
    assert stored.summary == "ImagePullBackOff: ImageNotFound", "a later Signal leaves the report's summary"


async def test_inconclusive_diagnosis_is_retried_on_the_next_crash_not_on_repeats(store: Store) -> None:
    diagnoser = Scripted(
        ("", "Unknown", ""), ("", "Unknown", ""), ("CrashLoopBackOff", "DependencyUnavailable", "critical")
    )
    orch = build(store, diagnoser)
    retried = {r: SIGNAL_RETRIES.labels(result=r)._value.get() for r in ("unchanged", "diagnosed")}
    first = await orch.handle(pod_signal(reason="CrashLoopBackOff", cluster="crash"))
    assert first.incident_id is not None
    incident_id = int(first.incident_id)
    assert (await store.get_incident(incident_id)).root_cause == "Unknown"
    again = await orch.handle(pod_signal(reason="CrashLoopBackOff", cluster="crash"), redelivered=True)
    assert again.outcome is Outcome.DUPLICATE and diagnoser.calls == 1, "a redelivery is no new crash"
    event = pod_signal(reason="BackOff", cluster="crash", source="event", occurrence=7)
    assert (await orch.handle(event)).outcome is Outcome.RECORDED, "an Event's repeat is no new crash"
    assert diagnoser.calls == 1

    restarted = await orch.handle(pod_signal(reason="Error", cluster="crash", occurrence=2))
    assert (restarted.outcome, diagnoser.calls) == (Outcome.UNCHANGED, 2), "the next crash looks again"
    other_pod = pod_signal(
        reason="CrashLoopBackOff", cluster="crash", pod="api-7d9f8c6b5-b2b2b", occurrence=2
    )
    assert (await orch.handle(other_pod)).outcome is Outcome.RECORDED, "one look per occurrence"
    assert diagnoser.calls == 2
    assert [r.version for r in await store.list_reports(incident_id)] == [1], "still Unknown: no version"

    third = await orch.handle(pod_signal(reason="CrashLoopBackOff", cluster="crash", occurrence=3))
    assert (third.outcome, third.report_version, diagnoser.calls) == (Outcome.DIAGNOSED, 2, 3)
    stored = await store.get_incident(incident_id)
    assert (stored.root_cause, stored.reason) == ("DependencyUnavailable", "CrashLoopBackOff")
    later = await orch.handle(pod_signal(reason="CrashLoopBackOff", cluster="crash", occurrence=4))
    assert later.outcome is Outcome.RECORDED and diagnoser.calls == 3, "a conclusive report is kept"
    assert SIGNAL_RETRIES.labels(result="unchanged")._value.get() == retried["unchanged"] + 1
    assert SIGNAL_RETRIES.labels(result="diagnosed")._value.get() == retried["diagnosed"] + 1


async def test_inconclusive_diagnosis_of_a_quiet_incident_is_retried_by_the_recheck(store: Store) -> None:
    diagnoser = Scripted(
        ("", "Unknown", ""), ("", "Unknown", ""), ("CrashLoopBackOff", "DependencyUnavailable", "critical")
    )
    orch = build(store, diagnoser)
    clock = [0.0]
    base = orch.clock

    def later() -> datetime:
        return base() + timedelta(seconds=clock[0])

    orch.clock = later
    retry = InconclusiveRetry(orch, interval=timedelta(seconds=60), clock=later)
    resolver = Resolver(
        repository=orch.repository,
        probe=None,
        resolve_after=timedelta(minutes=10),
        recheck_interval=timedelta(seconds=60),
        health=orch.health,
        retry=retry,
        clock=later,
    )
    first = await orch.handle(pod_signal(reason="CrashLoopBackOff", cluster="retry"))
    assert first.incident_id is not None
    incident_id = int(first.incident_id)

    await resolver.sweep()  # starts this replica's schedule: attempt 1 after 60 s
    assert diagnoser.calls == 1
    clock[0] = 59.0
    await resolver.sweep()
    assert diagnoser.calls == 1
    clock[0] = 60.0
    await resolver.sweep()
    assert diagnoser.calls == 2, "attempt 1"
    assert [r.version for r in await store.list_reports(incident_id)] == [1], "still Unknown: no version"
    clock[0] = 120.0
    await resolver.sweep()
    assert diagnoser.calls == 2, "attempt 2 only after 3 intervals"
    clock[0] = 180.0
    await resolver.sweep()
    assert diagnoser.calls == 3, "attempt 2"
    stored = await store.get_incident(incident_id)
    assert (stored.root_cause, stored.reason) == ("DependencyUnavailable", "CrashLoopBackOff")
    assert sorted(r.version for r in await store.list_reports(incident_id)) == [1, 2]
    clock[0] = 10_000.0
    await resolver.sweep()
    assert diagnoser.calls == 3, "a conclusive report is not retried"


async def test_inconclusive_retries_are_bounded_and_counted(store: Store) -> None:
    diagnoser = Scripted(("", "Unknown", ""))
    orch = build(store, diagnoser)
    clock = [0.0]
    base = orch.clock

    def later() -> datetime:
        return base() + timedelta(seconds=clock[0])

    retry = InconclusiveRetry(orch, interval=timedelta(seconds=60), clock=later)
    first = await orch.handle(pod_signal(reason="CrashLoopBackOff", cluster="bounded"))
    assert first.incident_id is not None
    incident = await orch.repository.get_incident(first.incident_id)
    assert incident is not None
    unchanged = INCONCLUSIVE_RETRIES.labels(result="unchanged")._value.get()
    for step in range(0, 2000, 30):
        clock[0] = float(step)
        await retry(incident)
    assert diagnoser.calls == 1 + RETRY_ATTEMPTS
    assert INCONCLUSIVE_RETRIES.labels(result="unchanged")._value.get() == unchanged + RETRY_ATTEMPTS
    assert [r.version for r in await store.list_reports(int(first.incident_id))] == [1]

    other = InconclusiveRetry(orch, interval=timedelta(seconds=60), clock=later)
    clock[0] = 0.0
    await other(incident)
    clock[0] = 5000.0
    await other(incident)
    assert diagnoser.calls == 1 + RETRY_ATTEMPTS, "another replica's schedule finds the attempts taken"


async def test_rediagnose_request_bypasses_the_cooldown_and_adds_a_version(store: Store) -> None:
    diagnoser = Scripted(("OOMKilled", "MemoryLimitTooLow", "critical"))
    orch = build(store, diagnoser)
    first = await orch.handle(pod_signal(reason="OOMKilled", cluster="test"))
    assert first.incident_id is not None
    assert (await orch.handle(pod_signal(reason="OOMKilled", occurrence=2))).outcome is Outcome.RECORDED
    request = rediagnose(first.incident_id, at=1)
    handled = await orch.handle(request)
    assert (handled.outcome, handled.report_version) == (Outcome.DIAGNOSED, 2)
    redelivered = await orch.handle(request, redelivered=True)
    assert redelivered.outcome is Outcome.DUPLICATE, "a redelivered request adds no version"
    assert sorted(r.version for r in await store.list_reports(int(first.incident_id))) == [1, 2]
    missing = await orch.handle(rediagnose("999999", at=2))
    assert missing.outcome is Outcome.RECORDED and missing.incident_id is None


async def test_resolved_signal_starts_the_healthy_clock_and_opens_nothing(store: Store) -> None:
    orch = build(store, Scripted(("Unhealthy", "ReadinessProbeFailing", "warning")))
    lone = await orch.handle(
        pod_signal(
            reason="Ready", cluster="heal", resolved=True, rs="lone-7d9f8c6b5", pod="lone-7d9f8c6b5-aaaaa"
        )
    )
    assert lone.outcome is Outcome.RESOLVING and lone.incident_id is None
    failing = await orch.handle(
        pod_signal(reason="Unhealthy", message="Readiness probe failed", cluster="heal")
    )
    assert failing.incident_id is not None
    # The watcher's resolving Signal may name the failure or just the pod being Ready again.
    healed = await orch.handle(pod_signal(reason="Ready", cluster="heal", occurrence=5, resolved=True))
    assert (healed.outcome, healed.incident_id) == (Outcome.RESOLVING, failing.incident_id)
    incident = await orch.repository.get_incident(failing.incident_id)
    assert incident is not None and orch.health.since(incident) is not None
    page = await store.list_incidents(IncidentFilters(cluster_id="heal"))
    assert len(page.items) == 1, "a resolving Signal never opens an incident"
