"""The consumer loop's promises to the bus: ack after commit, nak with backoff, dead-letter at max."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aetherius.backoff import exponential
from aetherius.bus.base import BusUnavailable, Delivery, SignalBus
from aetherius.bus.memory import MemoryBus
from aetherius.config import OrchestratorSettings
from aetherius.orchestrator.consumer import DEAD_LETTERED, RETRY_BASE, RETRY_CAP, Consumer
from aetherius.orchestrator.cooldown import MemoryCooldown
from aetherius.orchestrator.model import Incident, ReportDraft
from aetherius.orchestrator.ratelimit import MemoryRateLimiter
from aetherius.orchestrator.service import Orchestrator
from aetherius.signals import Signal
from tests.orchestrator.factories import pod_signal
from tests.orchestrator.memory_repository import MemoryRepository
from tests.orchestrator.test_service import RecordingDiagnoser
from tests.waiting import until


class SettledDelivery:
    """Records how the consumer settled it: the thing under test is that decision."""

    def __init__(self, signal: Signal, deliveries: int = 1) -> None:
        self.signal = signal
        self.deliveries = deliveries
        self.settled: list[tuple[str, float | None]] = []

    async def ack(self) -> None:
        self.settled.append(("ack", None))

    async def nak(self, *, delay: float | None = None) -> None:
        self.settled.append(("nak", delay))

    async def term(self) -> None:
        self.settled.append(("term", None))

    async def in_progress(self) -> None:
        self.settled.append(("in_progress", None))


class QueueBus:
    def __init__(self, batches: list[list[SettledDelivery]], *, fail_first_pull: bool = False) -> None:
        self.batches = batches
        self.fail_first_pull = fail_first_pull
        self.pulls = 0
        self.drained: asyncio.Event | None = None

    async def publish(self, signals: Sequence[Signal]) -> None:
        raise NotImplementedError

    async def pull(self, *, durable: str, batch: int, timeout: float) -> list[Delivery]:
        self.pulls += 1
        if self.fail_first_pull and self.pulls == 1:
            raise BusUnavailable("down")
        if self.batches:
            return list(self.batches.pop(0))
        if self.drained is not None:
            self.drained.set()  # the consumer finished the last batch before pulling again
        return []

    async def close(self) -> None:
        return None


def consumer(
    bus: SignalBus,
    *,
    diagnoser: RecordingDiagnoser,
    per_minute: float = 6000,
    burst: int = 100,
    progress_every: float | None = None,
) -> tuple[Consumer, MemoryRepository]:
    repo = MemoryRepository()
    orch = Orchestrator(
        repository=repo,
        diagnoser=diagnoser,
        cooldown=MemoryCooldown(),
        limiter=MemoryRateLimiter(per_minute=per_minute, burst=burst),
        settings=OrchestratorSettings(),
    )
    c = Consumer(
        bus=bus,
        orchestrator=orch,
        durable="d",
        batch=10,
        pull_timeout=0.01,
        max_deliver=3,
        progress_every=progress_every,
    )
    return c, repo


async def run_until_drained(c: Consumer, bus: QueueBus) -> None:
    stop = asyncio.Event()
    bus.drained = stop
    task = asyncio.create_task(c.run(stop))
    await asyncio.wait_for(task, timeout=5)


async def test_acks_after_commit_and_batches_are_handled() -> None:
    deliveries = [SettledDelivery(pod_signal(reason="OOMKilled", occurrence=i)) for i in range(1, 6)]
    bus = QueueBus([deliveries[:3], deliveries[3:]], fail_first_pull=True)
    c, repo = consumer(bus, diagnoser=RecordingDiagnoser())
    await run_until_drained(c, bus)
    assert [d.settled for d in deliveries] == [[("ack", None)]] * 5
    assert len(repo.incidents) == 1 and len(repo.reports) == 1
    assert c.handled == 5


async def test_failure_naks_with_backoff_then_dead_letters_at_max_deliver() -> None:
    signal = pod_signal(reason="ErrImagePull")
    attempts = [SettledDelivery(signal, deliveries=n) for n in (1, 2, 3)]
    bus = QueueBus([[a] for a in attempts])
    before = DEAD_LETTERED._value.get()
    c, repo = consumer(bus, diagnoser=RecordingDiagnoser(fail_times=3))
    await run_until_drained(c, bus)
    assert attempts[0].settled == [("nak", 0.5)]
    assert attempts[1].settled == [("nak", 1.0)]
    assert attempts[2].settled == [("term", None)]
    assert DEAD_LETTERED._value.get() == before + 1
    assert len(repo.incidents) == 1, "the Signal itself was kept"
    delays = [exponential(n, base=RETRY_BASE, cap=RETRY_CAP) for n in (1, 2, 10)]
    assert delays == [0.5, 1.0, 30.0]


async def test_a_diagnosis_waiting_for_budget_is_handed_back_with_the_wait_on_stop() -> None:
    """While running, a deferred diagnosis waits held (see test_burst); stopping hands it back."""
    first = SettledDelivery(pod_signal(reason="OOMKilled"))
    second = SettledDelivery(
        pod_signal(reason="ErrImagePull", rs="web-5c8d7bf9d4", pod="web-5c8d7bf9d4-aaaaa")
    )
    bus = QueueBus([[first], [second]])
    c, _ = consumer(bus, diagnoser=RecordingDiagnoser(), per_minute=1, burst=1)
    await run_until_drained(c, bus)
    assert first.settled == [("ack", None)]
    assert second.settled[0][0] == "nak"
    delay = second.settled[0][1]
    assert delay is not None and 50 < delay <= 60


class GatedDiagnoser(RecordingDiagnoser):
    """A diagnosis that lasts until the test opens the gate (a slow live cluster)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        await self.gate.wait()
        return await super().diagnose(incident, diagnosis_id=diagnosis_id)


async def test_updates_are_stored_and_acked_while_the_new_incident_is_diagnosed() -> None:
    bus = MemoryBus(ack_wait=60)
    diagnoser = GatedDiagnoser()
    c, repo = consumer(bus, diagnoser=diagnoser)
    await bus.publish([pod_signal(reason="OOMKilled", occurrence=n) for n in range(1, 21)])
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    try:
        # the 19 updates behind the first Signal (same incident, same lane) do not wait for it
        await asyncio.wait_for(_until(lambda: c.handled == 19), timeout=5)
        (incident,) = repo.incidents.values()
        assert incident.signal_count == 20 and not repo.reports
        diagnoser.gate.set()
        await asyncio.wait_for(_until(lambda: c.handled == 20), timeout=5)
        assert len(repo.reports) == 1 and diagnoser.calls == [incident.id]
    finally:
        diagnoser.gate.set()
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def test_a_signal_held_past_ack_wait_is_kept_in_progress_not_redelivered() -> None:
    bus = MemoryBus(ack_wait=0.3)
    diagnoser = GatedDiagnoser()
    c, repo = consumer(bus, diagnoser=diagnoser, progress_every=0.1)
    await bus.publish([pod_signal(reason="OOMKilled")])
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    try:
        await asyncio.sleep(1.0)  # three ack_waits while the diagnosis waits
        diagnoser.gate.set()
        await asyncio.wait_for(_until(lambda: c.handled == 1), timeout=5)
        assert len(diagnoser.calls) == 1, "diagnosed once: the Signal was never redelivered"
        assert len(repo.reports) == 1
    finally:
        diagnoser.gate.set()
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert await bus.pull(durable="d", batch=10, timeout=0.4) == []


async def _until(check: Callable[[], bool]) -> None:
    async def checked() -> bool:
        return check()

    await until(checked, timeout=5, what="the consumer to settle")


async def test_a_signal_no_store_or_cluster_could_take_is_dead_lettered_at_once() -> None:
    """Published past the edge's checks (a name climbing out of its path, a NUL): given up on
    its first delivery, counted, never recorded and never diagnosed."""
    from aetherius.orchestrator.consumer import UNSTORABLE

    climbing = pod_signal(reason="OOMKilled", pod="../secrets/db-password")
    nul = pod_signal(reason="OOMKilled", pod="api-7d9f8c6b5-aaaaa", message="boom\x00")
    good = pod_signal(reason="OOMKilled", pod="api-7d9f8c6b5-bbbbb")
    deliveries = [SettledDelivery(s) for s in (climbing, nul, good)]
    bus = QueueBus([deliveries])
    before = UNSTORABLE._value.get()
    diagnoser = RecordingDiagnoser()
    c, repo = consumer(bus, diagnoser=diagnoser)
    await run_until_drained(c, bus)
    assert [d.settled for d in deliveries] == [[("term", None)], [("term", None)], [("ack", None)]]
    assert UNSTORABLE._value.get() == before + 2
    assert len(repo.incidents) == 1 and len(diagnoser.calls) == 1
