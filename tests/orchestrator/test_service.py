"""The orchestrator's decisions on the in-process repository: grouping, cooldown, redelivery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from aetherius.config import OrchestratorSettings
from aetherius.orchestrator.cooldown import MemoryCooldown
from aetherius.orchestrator.model import Incident, ReportDraft
from aetherius.orchestrator.ratelimit import MemoryRateLimiter
from aetherius.orchestrator.resolver import Resolver
from aetherius.orchestrator.service import Orchestrator, Outcome, Pending
from tests.orchestrator.factories import pod_signal
from tests.orchestrator.memory_repository import MemoryRepository
from tests.waiting import until


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.mono = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


class RecordingDiagnoser:
    """Stands in for the engine in decision tests: it reports what the incident says."""

    def __init__(self, *, fail_times: int = 0, root_cause: str = "MemoryLimitTooLow") -> None:
        self.calls: list[str] = []
        self.fail_times = fail_times
        self.root_cause = root_cause

    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        self.calls.append(incident.id)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("engine failed")
        return ReportDraft(
            summary=f"{incident.workload.name} fails",
            root_cause=self.root_cause,
            severity=incident.severity,
            findings=[],
        )


def build(
    *, per_minute: float = 6000, burst: int = 100, diagnoser: RecordingDiagnoser | None = None
) -> tuple[Orchestrator, MemoryRepository, RecordingDiagnoser, Clock]:
    clock = Clock()
    repo = MemoryRepository()
    diag = diagnoser or RecordingDiagnoser()
    orch = Orchestrator(
        repository=repo,
        diagnoser=diag,
        cooldown=MemoryCooldown(clock=clock.monotonic),
        limiter=MemoryRateLimiter(per_minute=per_minute, burst=burst, clock=clock.monotonic),
        settings=OrchestratorSettings(),
        clock=clock,
    )
    return orch, repo, diag, clock


async def test_crash_loop_backoff_storm_is_diagnosed_once() -> None:
    orch, repo, diag, clock = build()
    first = await orch.handle(pod_signal(reason="CrashLoopBackOff", occurrence=1))
    assert first.outcome is Outcome.DIAGNOSED
    for occurrence in range(2, 30):
        clock.advance(10)
        handled = await orch.handle(pod_signal(reason="CrashLoopBackOff", occurrence=occurrence))
        assert handled.outcome is Outcome.RECORDED
    assert len(diag.calls) == 1
    assert len(repo.incidents) == 1
    incident = next(iter(repo.incidents.values()))
    assert incident.signal_count == 29
    assert [n.notice for n in repo.notices] == ["new"]


async def test_cooldown_expiry_rediagnoses_and_synonyms_are_not_new_evidence() -> None:
    orch, repo, diag, clock = build()
    await orch.handle(pod_signal(reason="CrashLoopBackOff"))
    clock.advance(5)
    backoff = pod_signal(reason="BackOff", message="Back-off restarting failed container", source="event")
    assert (await orch.handle(backoff)).outcome is Outcome.RECORDED
    clock.advance(15 * 60 + 1)
    again = await orch.handle(pod_signal(reason="CrashLoopBackOff", occurrence=2))
    assert again.outcome is Outcome.DIAGNOSED
    assert again.report_version == 2
    assert len(diag.calls) == 2
    assert len(repo.notices) == 1, "a cooldown re-diagnosis is not a new notice"


async def test_new_evidence_rediagnoses_at_once_and_escalation_notifies() -> None:
    orch, repo, diag, _ = build()
    await orch.handle(pod_signal(reason="CrashLoopBackOff"))
    oom = await orch.handle(pod_signal(reason="OOMKilled", pod="api-7d9f8c6b5-other"))
    assert oom.outcome is Outcome.DIAGNOSED, "a new reason is new evidence"
    sidecar = await orch.handle(pod_signal(reason="OOMKilled", container="sidecar"))
    assert sidecar.outcome is Outcome.DIAGNOSED, "a new container is new evidence"
    critical = await orch.handle(pod_signal(reason="OOMKilled", severity="critical", occurrence=5))
    assert critical.outcome is Outcome.DIAGNOSED
    assert len(repo.incidents) == 1
    incident = next(iter(repo.incidents.values()))
    assert incident.objects == ["Pod/shop/api-7d9f8c6b5-x2k4q", "Pod/shop/api-7d9f8c6b5-other"]
    assert [n.notice for n in repo.notices] == ["new", "escalated"]
    assert len(diag.calls) == 4


async def test_redelivery_after_commit_is_a_duplicate_and_after_crash_finishes_the_work() -> None:
    orch, repo, diag, _ = build()
    signal = pod_signal(reason="ErrImagePull")
    # The replica committed the signal and died before diagnosing: simulate by recording only.
    from aetherius.orchestrator.grouping import incident_key

    await repo.record_signal(signal, key=incident_key(signal), now=orch.clock())
    redelivered = await orch.handle(signal)
    assert redelivered.outcome is Outcome.DIAGNOSED, "the redelivery finishes the lost diagnosis"
    again = await orch.handle(signal)
    assert again.outcome is Outcome.DUPLICATE
    assert len(diag.calls) == 1
    assert len(repo.reports) == 1


async def test_claim_taken_before_death_is_found_by_the_redelivery() -> None:
    orch, repo, diag, _ = build(diagnoser=RecordingDiagnoser(fail_times=1))
    signal = pod_signal(reason="OOMKilled")
    with pytest.raises(RuntimeError):
        await orch.handle(signal)
    other = await orch.handle(pod_signal(reason="OOMKilled", pod="api-7d9f8c6b5-zzzzz"))
    assert other.outcome is Outcome.RECORDED, "the same evidence is being diagnosed already"
    retried = await orch.handle(signal, redelivered=True)
    assert retried.outcome is Outcome.DIAGNOSED
    assert len(repo.reports) == 1
    assert len(diag.calls) == 2


async def test_rate_limit_defers_without_losing_the_diagnosis() -> None:
    orch, repo, _, clock = build(per_minute=6, burst=1)
    assert (await orch.handle(pod_signal(reason="OOMKilled"))).outcome is Outcome.DIAGNOSED
    image = pod_signal(reason="ErrImagePull", rs="web-5c8d7bf9d4", pod="web-5c8d7bf9d4-aaaaa")
    deferred = await orch.handle(image)
    assert deferred.outcome is Outcome.DEFERRED
    assert deferred.retry_after == pytest.approx(10.0)
    clock.advance(deferred.retry_after)
    assert (await orch.handle(image)).outcome is Outcome.DIAGNOSED
    assert len(repo.incidents) == 2
    assert len(repo.reports) == 2


async def test_resolve_after_healthy_time_and_reopen_on_recurrence() -> None:
    orch, repo, _, clock = build()
    first = await orch.handle(pod_signal(reason="Unhealthy", message="Readiness probe failed"))
    assert first.incident_id is not None
    resolver = Resolver(
        repository=repo,
        probe=None,
        resolve_after=timedelta(minutes=10),
        recheck_interval=timedelta(minutes=1),
        health=orch.health,
        clock=clock,
    )
    await orch.handle(pod_signal(reason="Unhealthy", occurrence=9, resolved=True))
    clock.advance(5 * 60)
    assert await resolver.sweep() == []
    clock.advance(5 * 60)
    assert await resolver.sweep() == [first.incident_id]
    assert repo.incidents[first.incident_id].state == "resolved"
    clock.advance(60)
    recurred = await orch.handle(pod_signal(reason="Unhealthy", occurrence=10))
    assert recurred.incident_id == first.incident_id
    assert recurred.outcome is Outcome.DIAGNOSED, "a reopened incident is diagnosed again"
    incident = repo.incidents[first.incident_id]
    assert (incident.state, incident.reopen_count) == ("open", 1)
    assert [n.notice for n in repo.notices] == ["new", "reopened"]


async def test_new_failure_stops_the_healthy_clock() -> None:
    orch, repo, _, clock = build()
    first = await orch.handle(pod_signal(reason="FailedMount"))
    resolver = Resolver(
        repository=repo,
        probe=None,
        resolve_after=timedelta(minutes=10),
        recheck_interval=timedelta(minutes=1),
        health=orch.health,
        clock=clock,
    )
    await orch.handle(pod_signal(reason="FailedMount", occurrence=2, resolved=True))
    clock.advance(9 * 60)
    await orch.handle(pod_signal(reason="FailedMount", occurrence=3))
    clock.advance(2 * 60)
    assert await resolver.sweep() == []
    assert first.incident_id is not None
    assert repo.incidents[first.incident_id].state == "open"


class StaticProbe:
    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.asked = 0

    async def healthy(self, incident: Incident) -> bool | None:
        self.asked += 1
        return self.answer


async def test_periodic_recheck_starts_and_stops_the_healthy_clock() -> None:
    orch, repo, _, clock = build()
    first = await orch.handle(pod_signal(reason="FailedScheduling", rs=None, pod="batch"))
    assert first.incident_id is not None
    probe = StaticProbe(True)
    resolver = Resolver(
        repository=repo,
        probe=probe,
        resolve_after=timedelta(minutes=10),
        recheck_interval=timedelta(minutes=1),
        health=orch.health,
        clock=clock,
    )
    assert await resolver.sweep() == []
    assert probe.asked == 0, "an incident with fresh Signals is not re-checked"
    clock.advance(120)
    await resolver.sweep()
    assert orch.health.since(repo.incidents[first.incident_id]) == clock.now
    probe.answer = False
    clock.advance(120)
    await resolver.sweep()
    assert orch.health.since(repo.incidents[first.incident_id]) is None
    probe.answer = True
    await resolver.sweep()
    clock.advance(10 * 60)
    assert await resolver.sweep() == [first.incident_id]


class OwnerlessMarks:
    """Cooldown marks without an owner, like the store's fallback marks: a claim is taken once."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    async def claim(self, key: str, *, owner: str, ttl: float) -> bool:
        if key in self.keys:
            return False
        self.keys.add(key)
        return True

    async def release(self, key: str, *, owner: str) -> None:
        self.keys.discard(key)


async def test_ownerless_marks_still_let_a_redelivery_finish_its_diagnosis() -> None:
    orch, repo, diag, _ = build(diagnoser=RecordingDiagnoser(fail_times=1))
    orch.cooldown = OwnerlessMarks()
    signal = pod_signal(reason="CreateContainerConfigError")
    with pytest.raises(RuntimeError):
        await orch.handle(signal)
    assert (await orch.handle(pod_signal(reason="CreateContainerConfigError", occurrence=2))).outcome is (
        Outcome.RECORDED
    )
    assert (await orch.handle(signal, redelivered=True)).outcome is Outcome.DIAGNOSED
    assert (await orch.handle(signal, redelivered=True)).outcome is Outcome.DUPLICATE
    assert len(repo.reports) == 1
    assert len(diag.calls) == 2


async def test_failure_seen_by_another_replica_stops_this_replicas_healthy_clock() -> None:
    orch, repo, _, clock = build()
    first = await orch.handle(pod_signal(reason="FailedMount"))
    assert first.incident_id is not None
    orch.health.mark(first.incident_id, since=clock.now)
    clock.advance(30)
    other_replica, *_ = build()
    other_replica.repository = repo
    other_replica.clock = clock
    await other_replica.handle(pod_signal(reason="FailedMount", occurrence=2))
    assert orch.health.since(repo.incidents[first.incident_id]) is None


class GatedDiagnoser(RecordingDiagnoser):
    """A diagnosis that stays under way until the test opens the gate (the first call only)."""

    def __init__(self, *, fail_first: bool = False) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail_first = fail_first

    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        first = not self.calls
        self.calls.append(incident.id)
        if first:
            await self.gate.wait()
            if self.fail_first:
                raise RuntimeError("engine failed")
        return ReportDraft(
            summary="fails", root_cause=self.root_cause, severity=incident.severity, findings=[]
        )


def _shared_count() -> float:
    return REGISTRY.get_sample_value("aetherius_orchestrator_diagnoses_total", {"result": "shared"}) or 0.0


async def test_signals_stored_before_a_diagnosis_began_share_it() -> None:
    """A new workload's first Signals carry different evidence and arrive together: one diagnosis
    reads the cluster for them all, each Signal is answered with its report."""
    diag = GatedDiagnoser()
    orch, repo, _, _ = build(diagnoser=diag)
    steps = await orch.record(
        [(pod_signal(reason="OOMKilled"), False), (pod_signal(reason="BackOff"), False)]
    )
    first, second = steps
    assert isinstance(first, Pending) and isinstance(second, Pending), steps
    assert first.digest != second.digest, "two pieces of evidence, each claimed"
    shared_before = _shared_count()
    running = asyncio.create_task(orch.diagnose(first))
    await until(lambda: diag.calls, "the first diagnosis under way")
    waiting = asyncio.create_task(orch.diagnose(second))
    await asyncio.sleep(0)
    assert not waiting.done()
    diag.gate.set()
    done, shared = await running, await waiting
    assert done.outcome is Outcome.DIAGNOSED and shared.outcome is Outcome.RECORDED
    assert shared.report_version == done.report_version == 1
    assert len(diag.calls) == 1 and len(repo.reports) == 1
    assert _shared_count() == shared_before + 1


async def test_a_signal_stored_after_the_diagnosis_began_gets_its_own() -> None:
    """What a diagnosis under way read may predate the Signal: it is not taken for the Signal's."""
    diag = GatedDiagnoser()
    orch, repo, _, clock = build(diagnoser=diag)
    (first,) = await orch.record([(pod_signal(reason="OOMKilled"), False)])
    assert isinstance(first, Pending)
    running = asyncio.create_task(orch.diagnose(first))
    await until(lambda: diag.calls, "the first diagnosis under way")
    clock.advance(1)
    (later,) = await orch.record([(pod_signal(reason="BackOff"), False)])
    assert isinstance(later, Pending)
    own = await orch.diagnose(later)
    assert own.outcome is Outcome.DIAGNOSED and len(diag.calls) == 2
    diag.gate.set()
    assert (await running).outcome is Outcome.DIAGNOSED
    assert len(repo.reports) == 2


async def test_when_the_shared_diagnosis_fails_the_waiting_signal_runs_its_own() -> None:
    diag = GatedDiagnoser(fail_first=True)
    orch, repo, _, _ = build(diagnoser=diag)
    first, second = await orch.record(
        [(pod_signal(reason="OOMKilled"), False), (pod_signal(reason="BackOff"), False)]
    )
    assert isinstance(first, Pending) and isinstance(second, Pending)
    running = asyncio.create_task(orch.diagnose(first))
    await until(lambda: diag.calls, "the first diagnosis under way")
    waiting = asyncio.create_task(orch.diagnose(second))
    diag.gate.set()
    with pytest.raises(RuntimeError, match="engine failed"):
        await running
    own = await waiting
    assert own.outcome is Outcome.DIAGNOSED, "nothing is lost with the failed diagnosis"
    assert len(diag.calls) == 2 and len(repo.reports) == 1
