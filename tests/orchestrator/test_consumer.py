"""The consumer loop's promises to the bus: ack after commit, nak with backoff, dead-letter at max."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aetherius.bus.base import BusUnavailable, Delivery
from aetherius.config import OrchestratorSettings
from aetherius.orchestrator.consumer import DEAD_LETTERED, Consumer, backoff
from aetherius.orchestrator.cooldown import MemoryCooldown
from aetherius.orchestrator.memory import MemoryRepository
from aetherius.orchestrator.ratelimit import MemoryRateLimiter
from aetherius.orchestrator.service import Orchestrator
from aetherius.signals import Signal
from tests.orchestrator.factories import pod_signal
from tests.orchestrator.test_service import RecordingDiagnoser


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
    bus: QueueBus, *, diagnoser: RecordingDiagnoser, per_minute: float = 6000, burst: int = 100
) -> tuple[Consumer, MemoryRepository]:
    repo = MemoryRepository()
    orch = Orchestrator(
        repository=repo,
        diagnoser=diagnoser,
        cooldown=MemoryCooldown(),
        limiter=MemoryRateLimiter(per_minute=per_minute, burst=burst),
        settings=OrchestratorSettings(),
    )
    return Consumer(bus=bus, orchestrator=orch, durable="d", batch=10, pull_timeout=0.01, max_deliver=3), repo


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
    assert attempts[0].settled == [("nak", backoff(1))]
    assert attempts[1].settled == [("nak", backoff(2))]
    assert attempts[2].settled == [("term", None)]
    assert DEAD_LETTERED._value.get() == before + 1
    assert len(repo.incidents) == 1, "the Signal itself was kept"
    assert backoff(1) < backoff(2) < backoff(10) == 30.0


async def test_rate_limited_diagnosis_goes_back_with_the_wait() -> None:
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
