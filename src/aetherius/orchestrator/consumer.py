"""The consumer loop: pull Signals from the shared durable consumer, handle, then ack.

Ack comes only after the incident (and report, when one is due) is committed, so a replica that
dies holding work hands it back through redelivery. A failure naks with an exponential delay; a
Signal that has failed ``max_deliver`` times (the bus's own setting, so the server's redelivery
limit and this decision agree) is terminated to the dead-letter subject — counted, logged, never
silently dropped.

Within a replica, Signals are handled concurrently (at most ``concurrency`` at once, at most
``batch`` held unacked) but in *lanes*: Signals of one incident fingerprint are handled one after
the other in arrival order, so two Signals of one incident never race each other (nor wait on the
store's per-incident lock holding a connection), while different incidents proceed side by side.
Pulling goes on while work is in hand: a slow diagnosis does not stall the Signals behind it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

from prometheus_client import Counter, Gauge, Histogram

from aetherius.bus.base import BusUnavailable, Delivery, SignalBus
from aetherius.logs import get_logger
from aetherius.orchestrator.grouping import incident_key
from aetherius.orchestrator.service import Orchestrator, Outcome

log = get_logger(__name__)

SIGNALS = Counter("aetherius_orchestrator_signals_total", "Signals handled, by outcome", ["outcome"])
FAILURES = Counter("aetherius_orchestrator_failures_total", "Signals whose handling failed (nak)", ["error"])
REDELIVERED = Counter("aetherius_orchestrator_redelivered_total", "Deliveries that were redeliveries")
DEAD_LETTERED = Counter(
    "aetherius_orchestrator_dead_lettered_total", "Signals given up after max_deliver attempts"
)
IN_FLIGHT = Gauge("aetherius_orchestrator_in_flight", "Deliveries being handled")
HANDLE_SECONDS = Histogram(
    "aetherius_orchestrator_handle_seconds",
    "Time from pull to ack of one Signal",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def backoff(deliveries: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Redelivery delay after the ``deliveries``-th failed attempt: 0.5 s, 1 s, 2 s… up to 30 s."""
    return float(min(cap, base * 2 ** max(0, deliveries - 1)))


class Consumer:
    def __init__(
        self,
        *,
        bus: SignalBus,
        orchestrator: Orchestrator,
        durable: str,
        batch: int,
        pull_timeout: float,
        max_deliver: int,
        concurrency: int = 8,
    ) -> None:
        self.bus = bus
        self.orchestrator = orchestrator
        self.durable = durable
        self.batch = batch
        self.pull_timeout = pull_timeout
        self.max_deliver = max_deliver
        self.handled = 0  # deliveries acked (any outcome but failure), for tests and logs
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._lanes: dict[str, collections.deque[Delivery]] = {}
        self._held = 0  # deliveries pulled and not yet settled
        self._room = asyncio.Event()  # set while fewer than ``batch`` are held
        self._room.set()
        self._idle = asyncio.Event()  # set while nothing is held
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Pull and handle until ``stop`` is set; the work in hand is finished (and acked) first."""
        log.info("orchestrator consuming", durable=self.durable, batch=self.batch)
        try:
            while not stop.is_set():
                await self._room.wait()
                try:
                    deliveries = await self.bus.pull(
                        durable=self.durable, batch=self.batch - self._held, timeout=self.pull_timeout
                    )
                except BusUnavailable as exc:
                    FAILURES.labels(error="bus").inc()
                    log.warning("bus unavailable, retrying", error=str(exc))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=1.0)
                    continue
                for delivery in deliveries:
                    self._dispatch(delivery)
                if deliveries:
                    await asyncio.sleep(0)  # let the lanes start before the next pull
        finally:
            await self._idle.wait()

    def _dispatch(self, delivery: Delivery) -> None:
        self._held += 1
        self._idle.clear()
        if self._held >= self.batch:
            self._room.clear()
        # NB: one lane per workload, not per failure class: a resolving Signal and a failure of
        # the same pod must be handled in the order they came.
        w = incident_key(delivery.signal).workload
        lane = f"{delivery.signal.cluster_id}/{w.kind}/{w.namespace}/{w.name}"
        queue = self._lanes.get(lane)
        if queue is not None:
            queue.append(delivery)  # its lane's task takes it after the ones before it
            return
        self._lanes[lane] = collections.deque([delivery])
        task = asyncio.create_task(self._lane(lane), name=f"lane-{lane[:12]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lane(self, lane: str) -> None:
        queue = self._lanes[lane]
        try:
            while queue:
                delivery = queue[0]
                try:
                    async with self._slots:
                        await self.process(delivery)
                except Exception as exc:  # NB: unsettled; the bus redelivers it after ack_wait
                    log.error("signal handling crashed", msg_id=delivery.signal.msg_id, error=repr(exc))
                finally:
                    queue.popleft()
                    self._held -= 1
                    if self._held < self.batch:
                        self._room.set()
        finally:
            del self._lanes[lane]
            if not self._held:
                self._idle.set()

    async def process(self, delivery: Delivery) -> None:
        if delivery.deliveries > 1:
            REDELIVERED.inc()
        IN_FLIGHT.inc()
        try:
            with HANDLE_SECONDS.time():
                await self._process(delivery)
        finally:
            IN_FLIGHT.dec()

    async def _process(self, delivery: Delivery) -> None:
        signal = delivery.signal
        try:
            handled = await self.orchestrator.handle(signal, redelivered=delivery.deliveries > 1)
        except Exception as exc:
            FAILURES.labels(error=type(exc).__name__).inc()
            await self._failed(delivery, exc)
            return
        try:
            if handled.outcome is Outcome.DEFERRED:
                SIGNALS.labels(outcome=handled.outcome.value).inc()
                await delivery.nak(delay=handled.retry_after)
                return
            await delivery.ack()
        except BusUnavailable as exc:
            # The work is committed; the redelivery will be recognised as a duplicate.
            FAILURES.labels(error="ack").inc()
            log.warning("ack failed, the Signal will be redelivered", msg_id=signal.msg_id, error=str(exc))
            return
        SIGNALS.labels(outcome=handled.outcome.value).inc()
        self.handled += 1

    async def _failed(self, delivery: Delivery, exc: Exception) -> None:
        signal = delivery.signal
        try:
            if delivery.deliveries >= self.max_deliver:
                DEAD_LETTERED.inc()
                log.error(
                    "signal dead-lettered",
                    msg_id=signal.msg_id,
                    deliveries=delivery.deliveries,
                    error=str(exc) or type(exc).__name__,
                )
                await delivery.term()
                return
            delay = backoff(delivery.deliveries)
            log.warning(
                "signal handling failed, will retry",
                msg_id=signal.msg_id,
                deliveries=delivery.deliveries,
                retry_in=delay,
                error=str(exc) or type(exc).__name__,
            )
            await delivery.nak(delay=delay)
        except BusUnavailable as bus_exc:
            log.warning(
                "nak failed, the Signal will be redelivered", msg_id=signal.msg_id, error=str(bus_exc)
            )
