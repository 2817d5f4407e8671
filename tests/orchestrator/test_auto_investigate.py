"""``reasoning.auto_on_unknown``: an Unknown rules report starts an investigation, once per incident
and evidence, without the orchestrator waiting for it; on SQLite and PostgreSQL, against the
scripted model server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from aetherius.config import OrchestratorSettings
from aetherius.orchestrator.auto_investigate import AUTO_INVESTIGATIONS, AutoInvestigations
from aetherius.orchestrator.cooldown import MemoryCooldown
from aetherius.orchestrator.model import Incident, ReportDraft, findings_digest
from aetherius.orchestrator.ratelimit import MemoryRateLimiter
from aetherius.orchestrator.service import Orchestrator, Outcome
from aetherius.orchestrator.storage import StoreRepository
from aetherius.store import Store
from tests.orchestrator.factories import pod_signal
from tests.reasoning.harness import good_script, make_investigations
from tests.reasoning.scripted_llm import hang, scripted_llm
from tests.store.databases import BACKENDS, db_url_fixture


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from db_url_fixture(request, tmp_path_factory)


class Rules:
    """A diagnoser whose answer the test sets: Unknown, with findings that change on demand."""

    def __init__(self, root_cause: str = "Unknown") -> None:
        self.root_cause = root_cause
        self.evidence = "no rule matched"

    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        finding = {
            "kind": "Pod",
            "namespace": incident.workload.namespace,
            "name": incident.workload.name,
            "severity": "warning",
            "reason": "BackOff",
            "root_cause": self.root_cause,
            "evidence": [self.evidence],
        }
        return ReportDraft(
            summary="nothing explains it",
            root_cause=self.root_cause,
            severity=incident.severity,
            findings=[finding],
            evidence=[self.evidence],
        )


def _count(result: str) -> float:
    return AUTO_INVESTIGATIONS.labels(result)._value.get()


async def _diagnosed(orch: Orchestrator, cluster: str, rs: str, occurrence: int = 1) -> str:
    signal = pod_signal(reason="BackOff", rs=rs, pod=f"{rs}-aaaaa", cluster=cluster, occurrence=occurrence)
    handled = await orch.handle(signal)
    assert handled.outcome is Outcome.DIAGNOSED and handled.incident_id is not None
    return handled.incident_id


def _orchestrator(store: Store, rules: Rules, auto: AutoInvestigations | None) -> Orchestrator:
    return Orchestrator(
        repository=StoreRepository(store),
        diagnoser=rules,
        cooldown=MemoryCooldown(),
        limiter=MemoryRateLimiter(per_minute=6000, burst=100),
        settings=OrchestratorSettings(),
        on_unknown=auto.offer if auto is not None else None,
    )


async def test_an_unknown_report_is_investigated_once_per_evidence(store: Store) -> None:
    cluster, rs = f"auto-{secrets.token_hex(3)}", f"w{secrets.token_hex(2)}-7d9f8c6b5"
    pod = f"{rs}-aaaaa"
    before = {r: _count(r) for r in ("started", "duplicate")}
    with scripted_llm(good_script(pod)) as llm:
        service = make_investigations(store, llm.url, pod=pod)
        auto = AutoInvestigations(investigations=service, store=store)
        incident_id = await _diagnosed(_orchestrator(store, Rules(), auto), cluster, rs)
        await auto.drain()
        (first,) = await store.list_investigations(int(incident_id))
        assert (first.trigger, first.requested_by) == ("auto", "aetherius")
        assert (await service.wait(first.id)).ending == "answered"
        # the same findings offered again (another replica, a redelivery): not investigated again
        same = findings_digest(list((await store.latest_report(int(incident_id))).document["findings"]))  # type: ignore[union-attr]
        auto.offer(incident_id, same)
        await auto.drain()
        assert len(await store.list_investigations(int(incident_id))) == 1
        # new findings: investigated again, and the answer cache makes it cost nothing
        auto.offer(incident_id, "new findings")
        await auto.drain()
        second = (await store.list_investigations(int(incident_id)))[0]
        assert (await service.wait(second.id)).ending == "cached"
        await auto.close()
    assert len(llm.requests) == 2
    assert _count("started") - before["started"] == 2 and _count("duplicate") - before["duplicate"] == 1
    reports = await store.list_reports(int(incident_id))
    assert [r.source for r in reports] == ["investigation", "investigation", "rules"]
    assert (await store.get_incident(int(incident_id))).root_cause == "Unknown"


async def test_a_known_root_cause_is_not_investigated(store: Store) -> None:
    cluster, rs = f"auto-{secrets.token_hex(3)}", f"k{secrets.token_hex(2)}-7d9f8c6b5"
    with scripted_llm([]) as llm:
        service = make_investigations(store, llm.url, pod=f"{rs}-aaaaa")
        auto = AutoInvestigations(investigations=service, store=store)
        incident_id = await _diagnosed(_orchestrator(store, Rules("OutOfMemory"), auto), cluster, rs)
        await auto.drain()
        await auto.close()
    assert await store.list_investigations(int(incident_id)) == [] and llm.requests == []


async def test_the_consumer_never_waits_for_the_model(store: Store) -> None:
    """The model hangs; the Signal is handled all the same (were it awaited, this test would hang)."""
    cluster, rs = f"auto-{secrets.token_hex(3)}", f"h{secrets.token_hex(2)}-7d9f8c6b5"
    with scripted_llm([hang(), hang()]) as llm:
        service = make_investigations(store, llm.url, pod=f"{rs}-aaaaa")
        auto = AutoInvestigations(investigations=service, store=store)
        orch = _orchestrator(store, Rules(), auto)
        incident_id = await _diagnosed(orch, cluster, rs)
        second = await _diagnosed(orch, cluster, f"h{secrets.token_hex(2)}-7d9f8c6b5")
        await auto.drain()
        running = await store.list_investigations(int(incident_id))
        assert [i.status for i in running] == ["running"] and second != incident_id
        await auto.close()


async def test_too_many_starts_in_flight_are_dropped_and_counted(store: Store) -> None:
    service = make_investigations(store, "http://127.0.0.1:9/v1", pod="p")
    auto = AutoInvestigations(investigations=service, store=store, max_pending=0)
    dropped = _count("dropped")
    auto.offer("1", "x")
    assert _count("dropped") - dropped == 1
    await auto.close()
