"""A burst never loses a diagnosis: sixty workloads failing at once all get a report, later
rather than never, on the in-process bus and on real NATS JetStream, with the real store.

The per-cluster diagnosis budget is small on purpose (a burst of 5, 20 a second): most
diagnoses must wait. Waiting must not spend delivery attempts (``max_deliver`` is 3 here), and a
claimed cooldown must not strand the evidence when its diagnosis fails.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from aetherius.bus import StatefulBus, open_bus
from aetherius.bus.memory import MemoryBus
from aetherius.config import MessageBusSettings, OrchestratorSettings
from aetherius.orchestrator.consumer import DEAD_LETTERED, DEFERRALS, Consumer
from aetherius.orchestrator.cooldown import MemoryCooldown
from aetherius.orchestrator.ratelimit import MemoryRateLimiter
from aetherius.orchestrator.service import Orchestrator
from aetherius.orchestrator.storage import StoreRepository
from aetherius.store import IncidentFilters, Store
from tests.orchestrator.factories import pod_signal
from tests.orchestrator.processes import bus_section
from tests.orchestrator.test_service import RecordingDiagnoser
from tests.store.databases import BACKENDS, db_url_fixture
from tests.waiting import until

WORKLOADS = 60
MAX_DELIVER = 3


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """For the ``store`` fixture of tests/conftest.py: a migrated database of each backend."""
    yield from db_url_fixture(request, tmp_path_factory)


@pytest.fixture(params=["memory", "nats"])
async def bus(request: pytest.FixtureRequest, nats_url: str) -> AsyncIterator[StatefulBus]:
    if request.param == "memory":
        opened: StatefulBus = MemoryBus(max_deliver=MAX_DELIVER, ack_wait=2.0)
    else:
        section = {**bus_section(nats_url), "max_deliver": MAX_DELIVER, "ack_wait": "2s"}
        opened = await open_bus(MessageBusSettings.model_validate(section), name="test-burst")
    try:
        yield opened
    finally:
        await opened.close()


def _orchestrator(store: Store, diagnoser: RecordingDiagnoser) -> Orchestrator:
    return Orchestrator(
        repository=StoreRepository(store),
        diagnoser=diagnoser,
        cooldown=MemoryCooldown(),
        limiter=MemoryRateLimiter(per_minute=20 * 60, burst=5),
        settings=OrchestratorSettings(),
    )


async def _consume(bus: StatefulBus, orchestrator: Orchestrator, until: asyncio.Event) -> None:
    consumer = Consumer(
        bus=bus,
        orchestrator=orchestrator,
        durable=f"burst-{secrets.token_hex(3)}",
        batch=100,
        pull_timeout=0.2,
        max_deliver=MAX_DELIVER,
        progress_every=2.0 / 3,  # ack_wait / 3, as the orchestrator runs it
    )
    await consumer.run(until)


async def test_sixty_workloads_failing_at_once_all_get_a_report(store: Store, bus: StatefulBus) -> None:
    cluster = f"burst-{secrets.token_hex(3)}"
    signals = [
        pod_signal(reason="OOMKilled", rs=f"app{n}-7d9f8c6b5", pod=f"app{n}-7d9f8c6b5-x2k4q", cluster=cluster)
        for n in range(WORKLOADS)
    ]
    dead_before, deferred_before = DEAD_LETTERED._value.get(), DEFERRALS._value.get()
    diagnoser = RecordingDiagnoser()
    stop = asyncio.Event()
    await bus.publish(signals)
    task = asyncio.create_task(_consume(bus, _orchestrator(store, diagnoser), stop))

    async def reported() -> bool:
        page = await store.list_incidents(IncidentFilters(cluster_id=cluster), limit=500)
        return len(page.items) == WORKLOADS and all(i.report_version >= 1 for i in page.items)

    try:
        await until(reported, timeout=60, what=f"a report for each of {WORKLOADS} incidents")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    assert DEAD_LETTERED._value.get() == dead_before, "nothing was given up"
    assert DEFERRALS._value.get() > deferred_before, "the budget made diagnoses wait"
    assert sorted(diagnoser.calls) == sorted(set(diagnoser.calls)), "each diagnosed once"
    if isinstance(bus, MemoryBus):
        assert bus.dead_letters == []


async def test_a_failed_diagnosis_leaves_no_claim_behind(store: Store, bus: StatefulBus) -> None:
    """A diagnosis that fails until its Signal is dead-lettered must not block that evidence for
    the whole cooldown: the next Signal carrying it is diagnosed."""
    cluster = f"claim-{secrets.token_hex(3)}"
    diagnoser = RecordingDiagnoser(fail_times=MAX_DELIVER)
    orchestrator = _orchestrator(store, diagnoser)
    stop = asyncio.Event()
    first = pod_signal(reason="ErrImagePull", cluster=cluster, occurrence=1)
    await bus.publish([first])
    task = asyncio.create_task(_consume(bus, orchestrator, stop))
    try:
        await until(
            lambda: _true(len(diagnoser.calls) >= MAX_DELIVER),
            timeout=60,
            what="the failing diagnosis tried max_deliver times",
        )
        # The same evidence again (a repeat of the same failure), after the first was given up.
        await bus.publish([pod_signal(reason="ErrImagePull", cluster=cluster, occurrence=2)])

        async def reported() -> bool:
            page = await store.list_incidents(IncidentFilters(cluster_id=cluster), limit=10)
            return len(page.items) == 1 and page.items[0].report_version >= 1

        await until(reported, timeout=60, what="the next Signal's diagnosis")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def _true(value: bool) -> bool:
    return value
