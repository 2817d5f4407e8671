"""The orchestrator over the real store, on SQLite and PostgreSQL: same decisions, kept for real."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from aetherius.config import OrchestratorSettings
from aetherius.orchestrator.cooldown import MemoryCooldown
from aetherius.orchestrator.grouping import incident_key
from aetherius.orchestrator.model import Incident, ReportDraft, SignalOutcome
from aetherius.orchestrator.ratelimit import MemoryRateLimiter
from aetherius.orchestrator.service import Orchestrator, Outcome
from aetherius.orchestrator.storage import StoreCooldownMarks, StoreRepository
from aetherius.store import IncidentFilters, Store
from tests.orchestrator.factories import pod_signal
from tests.store.databases import BACKENDS, db_url_fixture


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from db_url_fixture(request, tmp_path_factory)


class FailingOnce:
    def __init__(self) -> None:
        self.calls = 0

    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("engine failed")
        return ReportDraft(
            summary="killed for memory",
            root_cause="OutOfMemory",
            severity=incident.severity,
            findings=[
                {
                    "kind": "Pod",
                    "namespace": "shop",
                    "name": "pod",
                    "reason": "OOMKilled",
                    "root_cause": "OutOfMemory",
                    "severity": "critical",
                    "evidence": ["lastState.terminated.reason=OOMKilled"],
                }
            ],
            evidence=["lastState.terminated.reason=OOMKilled"],
        )


def orchestrator(store: Store, diagnoser: FailingOnce, *, marks_in_store: bool) -> Orchestrator:
    return Orchestrator(
        repository=StoreRepository(store),
        diagnoser=diagnoser,
        cooldown=StoreCooldownMarks(store) if marks_in_store else MemoryCooldown(),
        limiter=MemoryRateLimiter(per_minute=6000, burst=100),
        settings=OrchestratorSettings(),
    )


@pytest.mark.parametrize("marks_in_store", [False, True])
async def test_crash_loop_on_the_store_one_incident_one_report_and_redelivery(
    store: Store, marks_in_store: bool
) -> None:
    diag = FailingOnce()
    orch = orchestrator(store, diag, marks_in_store=marks_in_store)
    rs = f"shop{int(marks_in_store)}-7d9f8c6b5"
    first = pod_signal(
        reason="OOMKilled", rs=rs, pod=f"{rs}-aaaaa", cluster="store-test", severity="critical"
    )
    with pytest.raises(RuntimeError):
        await orch.handle(first)
    for occurrence in range(1, 6):
        storm = pod_signal(
            reason="OOMKilled",
            rs=rs,
            pod=f"{rs}-bbbbb",
            occurrence=occurrence,
            cluster="store-test",
            severity="critical",
        )
        assert (await orch.handle(storm)).outcome is Outcome.RECORDED
    retried = await orch.handle(first, redelivered=True)
    assert retried.outcome is Outcome.DIAGNOSED
    assert (await orch.handle(first, redelivered=True)).outcome is Outcome.DUPLICATE
    page = await store.list_incidents(
        IncidentFilters(cluster_id="store-test", text=f"shop{int(marks_in_store)}")
    )
    assert len(page.items) == 1
    incident = page.items[0]
    assert (incident.owner_kind, incident.owner_name) == ("Deployment", f"shop{int(marks_in_store)}")
    assert incident.signal_count == 6
    assert {o["name"] for o in incident.affected_objects} == {f"{rs}-aaaaa", f"{rs}-bbbbb"}
    reports = await store.list_reports(incident.id)
    assert [r.version for r in reports] == [1]
    assert reports[0].root_cause == "OutOfMemory"
    assert "lastState.terminated.reason=OOMKilled" in reports[0].markdown
    assert diag.calls == 2


async def test_resolve_and_reopen_on_the_store(store: Store) -> None:
    diag = FailingOnce()
    diag.calls = 1
    orch = orchestrator(store, diag, marks_in_store=True)
    repo = StoreRepository(store)
    signal = pod_signal(
        reason="Unhealthy", rs="probe-5c8d7bf9d4", pod="probe-5c8d7bf9d4-aaaaa", cluster="reopen"
    )
    handled = await orch.handle(signal)
    assert handled.outcome is Outcome.DIAGNOSED and handled.incident_id is not None
    assert [i.id for i in await repo.open_incidents(cluster_id="reopen")] == [handled.incident_id]
    assert await repo.resolve(handled.incident_id, now=orch.clock())
    assert not await repo.resolve(handled.incident_id, now=orch.clock()), "resolving twice is a no-op"
    assert await repo.open_incidents(cluster_id="reopen") == []
    again = await orch.handle(
        pod_signal(
            reason="Unhealthy",
            rs="probe-5c8d7bf9d4",
            pod="probe-5c8d7bf9d4-aaaaa",
            cluster="reopen",
            occurrence=2,
        )
    )
    assert again.incident_id == handled.incident_id
    assert again.outcome is Outcome.DIAGNOSED, "a reopened incident is diagnosed again"
    stored = await store.get_incident(int(handled.incident_id))
    assert (stored.state, stored.reopen_count, stored.report_version) == ("open", 1, 2)


async def test_one_bad_signal_fails_alone_and_its_batch_is_stored(store: Store) -> None:
    """A value the database refuses fails the batch's transaction; it is retried one by one."""
    repository = StoreRepository(store)
    cluster = f"bad-{secrets.token_hex(3)}"
    good = [pod_signal(reason="OOMKilled", cluster=cluster, occurrence=n) for n in range(1, 6)]
    bad = pod_signal(reason="OOMKilled", cluster=cluster, occurrence=99, message="broken \ud800 text")
    keyed = [(s, incident_key(s)) for s in [*good[:2], bad, *good[2:]]]
    now = datetime.now(UTC)
    # two lanes' submissions at the same moment, the bad Signal among good ones
    first, second = await asyncio.gather(
        repository.record_signals(keyed[:3], now=now), repository.record_signals(keyed[3:], now=now)
    )
    outcomes = [*first, *second]
    assert isinstance(outcomes[2], Exception)
    stored = [o for i, o in enumerate(outcomes) if i != 2]
    assert all(isinstance(o, SignalOutcome) and not o.duplicate for o in stored)
    assert await store.count_signals(cluster_id=cluster) == 5
    (incident,) = (await store.list_incidents(IncidentFilters(cluster_id=cluster))).items
    assert incident.signal_count == 5
    # redelivered, all of them: nothing changes
    again = await repository.record_signals(keyed[:2] + keyed[3:], now=now)
    assert all(isinstance(o, SignalOutcome) and o.duplicate for o in again)
    assert (await store.get_incident(incident.id)).signal_count == 5


class CriticalImage:
    """A diagnosis that knows better than the Signal: a warning Event, a pod that can never start."""

    def __init__(self) -> None:
        self.calls = 0

    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        self.calls += 1
        finding = {
            "kind": "Pod",
            "namespace": "shop",
            "name": "web",
            "reason": "ImagePullBackOff",
            "root_cause": "ImageNotFound",
            "severity": "critical",
            "evidence": ["image shop/web:9.9 not found"],
        }
        return ReportDraft(
            summary="image shop/web:9.9 not found",
            root_cause="ImageNotFound",
            severity="critical",
            findings=[finding],
            evidence=finding["evidence"],  # type: ignore[arg-type]
        )


async def test_one_severity_the_reports_and_no_rediagnosis_for_raising_it(store: Store) -> None:
    diag = CriticalImage()
    orch = orchestrator(store, diag, marks_in_store=True)  # type: ignore[arg-type]
    rs = f"web{secrets.token_hex(2)}-7d9f8c6b5"
    for occurrence in range(1, 4):
        signal = pod_signal(
            reason="ImagePullBackOff",
            rs=rs,
            pod=f"{rs}-aaaaa",
            occurrence=occurrence,
            cluster="severity-test",
            severity="warning",
        )
        await orch.handle(signal)
    page = await store.list_incidents(IncidentFilters(cluster_id="severity-test", text=rs.split("-")[0]))
    assert len(page.items) == 1 and page.items[0].severity == "critical", "the report's severity, everywhere"
    assert diag.calls == 1, "raising the severity is not new evidence: one diagnosis"
