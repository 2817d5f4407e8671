"""The consumer loop: pull Signals from the shared durable consumer, handle, then ack.

Ack comes only after the incident (and report, when one is due) is committed, so a replica that
dies holding work hands it back through redelivery. A failure naks with an exponential delay; a
Signal that has failed ``max_deliver`` times (the bus's own setting, so the server's redelivery
limit and this decision agree) is terminated to the dead-letter subject — counted, logged, never
silently dropped.

Within a replica, Signals are handled in *lanes*, one per workload: a lane takes its Signals in
arrival order, so a resolving Signal and a failure of the same pod never overtake each other.
A lane's leading failure Signals are recorded as one step, and the steps of all lanes (at most
``concurrency`` at once) share transactions (``orchestrator.batching``): a backlog costs a
transaction per batch, not per Signal. A Signal whose evidence is to be diagnosed is stored
first and diagnosed beside its lane (at most ``diagnoses`` at once), so a new incident's live
diagnosis never holds up the updates behind it. At most ``batch`` Signals are being recorded and
at most ``batch`` wait for their diagnosis, unacked; pulling goes on while work is in hand.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import SQLAlchemyError

from aetherius.backoff import exponential
from aetherius.bus.base import BusUnavailable, Delivery, SignalBus
from aetherius.gateway import BackendError
from aetherius.logs import get_logger
from aetherius.orchestrator.cooldown import RedisUnavailable
from aetherius.orchestrator.grouping import incident_key
from aetherius.orchestrator.service import Handled, Orchestrator, Outcome, Pending, batchable
from aetherius.signals import UnstorableSignal, check_storable
from aetherius.store import StoreError

log = get_logger(__name__)

SIGNALS = Counter("aetherius_orchestrator_signals_total", "Signals handled, by outcome", ["outcome"])
FAILURES = Counter("aetherius_orchestrator_failures_total", "Signals whose handling failed (nak)", ["error"])
REDELIVERED = Counter("aetherius_orchestrator_redelivered_total", "Deliveries that were redeliveries")
DEAD_LETTERED = Counter(
    "aetherius_orchestrator_dead_lettered_total", "Signals given up after max_deliver attempts"
)
IN_PROGRESS = Counter(
    "aetherius_orchestrator_in_progress_total",
    "Held Signals reported to the bus as still worked on (so they are not redelivered)",
)
IN_FLIGHT = Gauge("aetherius_orchestrator_in_flight", "Deliveries pulled and not yet settled")
DEFERRALS = Counter(
    "aetherius_orchestrator_diagnosis_deferrals_total",
    "Diagnoses put off because the cluster's budget was spent (the Signal stays held, in progress)",
)
UNSTORABLE = Counter(
    "aetherius_orchestrator_unstorable_total",
    "Signals dead-lettered at once: a field the store cannot hold or a name no object can have",
)
CLAIMS_RELEASED = Counter(
    "aetherius_orchestrator_claims_released_total",
    "Cooldown claims given up because their diagnosis failed or was handed back",
)
HANDLE_SECONDS = Histogram(
    "aetherius_orchestrator_handle_seconds",
    "Time from pull to ack of one Signal",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


@dataclass(slots=True, eq=False)
class _Held:
    delivery: Delivery
    pulled_at: float
    touched: float = 0.0  # when the bus was last told it is in progress (or pulled_at)


_OPERATIONAL = (
    StoreError,
    SQLAlchemyError,
    BackendError,
    BusUnavailable,
    RedisUnavailable,
    OSError,
    TimeoutError,
)


# Redelivery after a failed attempt: 0.5 s, 1 s, 2 s… up to 30 s.
RETRY_BASE, RETRY_CAP = 0.5, 30.0


def room_to_pull(*, recording: int, waiting: int, batch: int) -> int:
    """How many Signals to pull now (0: not yet), with ``recording`` of the held ones being
    stored and ``waiting`` for their diagnosis.

    A pull is worth it when there is room for half a ``batch`` (or nothing is being recorded),
    and while fewer than ``batch`` wait for a diagnosis: diagnoses falling behind do not stop
    the updates of incidents.

    NB: the half batch is the point. Refilling each freed place at once pulls one Signal at a
    time under a backlog, and one Signal per pull is one per transaction: a round trip to the
    bus and a commit each, which a replica at its CPU limit cannot afford. A quiet replica
    records nothing and pulls at once, so a lone failure is not delayed.
    """
    if waiting >= batch:
        return 0
    room = batch - recording
    return room if recording == 0 or room >= max(1, batch // 2) else 0


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
        concurrency: int = 64,
        diagnoses: int = 8,
        run_limit: int = 64,
        progress_every: float | None = None,
    ) -> None:
        self.bus = bus
        self.orchestrator = orchestrator
        self.durable = durable
        self.batch = batch
        self.pull_timeout = pull_timeout
        self.max_deliver = max_deliver
        self.run_limit = max(1, run_limit)
        # NB: a Signal held longer than the bus's ack_wait (a diagnosis queued behind others)
        # would be redelivered and diagnosed twice; held ones are reported in progress instead.
        self.progress_every = progress_every
        self._in_hand: set[_Held] = set()
        self.handled = 0  # deliveries acked (any outcome but failure), for tests and logs
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._diagnosing = asyncio.Semaphore(max(1, diagnoses))
        self._lanes: dict[str, collections.deque[_Held]] = {}
        self._held = 0  # deliveries pulled and not yet settled
        self._waiting = 0  # of them, stored and waiting for (or in) their diagnosis
        self._room = asyncio.Event()  # set while ``room_to_pull`` says to pull
        self._room.set()
        self._idle = asyncio.Event()  # set while nothing is held
        self._idle.set()
        self._stopping = asyncio.Event()  # set once ``run`` is asked to stop: deferrals go back
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Pull and handle until ``stop`` is set; the work in hand is finished (and acked) first."""
        log.info("orchestrator consuming", durable=self.durable, batch=self.batch)
        keeper = asyncio.create_task(self._keep_in_progress(), name="in-progress")
        try:
            while not stop.is_set():
                await self._room.wait()
                try:
                    deliveries = await self.bus.pull(
                        durable=self.durable,
                        batch=room_to_pull(
                            recording=self._held - self._waiting, waiting=self._waiting, batch=self.batch
                        ),
                        timeout=self.pull_timeout,
                    )
                except BusUnavailable as exc:
                    FAILURES.labels(error="bus").inc()
                    log.warning("bus unavailable, retrying", error=str(exc))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=1.0)
                    continue
                now = time.perf_counter()
                for delivery in deliveries:
                    self._dispatch(_Held(delivery, now))
                if deliveries:
                    await asyncio.sleep(0)  # let the lanes start before the next pull
        finally:
            self._stopping.set()
            await self._idle.wait()
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep_in_progress(self) -> None:
        """Tell the bus, every ``progress_every`` seconds, which held Signals are still worked on."""
        if self.progress_every is None:
            return
        while True:
            await asyncio.sleep(self.progress_every / 2)
            now = time.perf_counter()
            for held in list(self._in_hand):
                if now - held.touched < self.progress_every or held not in self._in_hand:
                    continue
                held.touched = now
                try:
                    await held.delivery.in_progress()
                except BusUnavailable as exc:
                    FAILURES.labels(error="in_progress").inc()
                    log.warning("cannot report a Signal in progress", error=str(exc))
                    break
                IN_PROGRESS.inc()

    def _dispatch(self, held: _Held) -> None:
        held.touched = held.pulled_at
        self._in_hand.add(held)
        self._held += 1
        IN_FLIGHT.inc()
        self._idle.clear()
        self._update_room()
        if held.delivery.deliveries > 1:
            REDELIVERED.inc()
        try:
            check_storable(held.delivery.signal, entry="bus")
        except UnstorableSignal as exc:
            # NB: whoever published it skipped the edge's checks; retrying cannot help.
            self._spawn(self._refuse(held, exc), name="refuse")
            return
        # NB: one lane per workload, not per failure class: a resolving Signal and a failure of
        # the same pod must be handled in the order they came.
        w = incident_key(held.delivery.signal).workload
        lane = f"{held.delivery.signal.cluster_id}/{w.kind}/{w.namespace}/{w.name}"
        queue = self._lanes.get(lane)
        if queue is not None:
            queue.append(held)  # its lane's task takes it after the ones before it
            return
        self._lanes[lane] = collections.deque([held])
        self._spawn(self._lane(lane), name=f"lane-{lane[:12]}")

    async def _refuse(self, held: _Held, exc: UnstorableSignal) -> None:
        UNSTORABLE.inc()
        DEAD_LETTERED.inc()
        log.error(
            "unstorable signal dead-lettered", msg_id=held.delivery.signal.msg_id[:200], error=str(exc)[:300]
        )
        try:
            await held.delivery.term()
        except BusUnavailable as bus_exc:
            log.warning("term failed, the Signal will be redelivered", error=str(bus_exc))
        finally:
            self._done(held)

    def _spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run(self, queue: collections.deque[_Held]) -> list[_Held]:
        """The lane's next step: its leading failure Signals (stored in one write), or its head."""
        run = [queue[0]]
        if batchable(queue[0].delivery.signal):
            for held in itertools.islice(queue, 1, self.run_limit):
                if not batchable(held.delivery.signal):
                    break
                run.append(held)
        return run

    async def _lane(self, lane: str) -> None:
        queue = self._lanes[lane]
        try:
            while queue:
                run = self._run(queue)
                items = [(h.delivery.signal, h.delivery.deliveries > 1) for h in run]
                try:
                    async with self._slots:
                        steps = await self.orchestrator.record(items)
                except Exception as exc:  # NB: a bug, not a store error (those are per step)
                    FAILURES.labels(error="bug").inc()
                    log.error("signal handling crashed", error=repr(exc), exc_info=exc)
                    steps = [exc] * len(run)
                for held, step in zip(run, steps, strict=True):
                    queue.popleft()
                    if isinstance(step, Pending):
                        # NB: the diagnosis goes on beside the lane; the Signals behind it (of
                        # the same incident, too) are stored meanwhile. It stays held until then.
                        self._waiting += 1
                        self._update_room()
                        self._spawn(self._diagnosis(held, step), name="diagnosis")
                    else:
                        await self._settle(held, step)
        finally:
            del self._lanes[lane]

    async def _diagnosis(self, held: _Held, pending: Pending) -> None:
        """Run the diagnosis a Signal owes, or share one of its incident already under way."""
        # NB: waiting for a diagnosis under way that serves this Signal too takes no place among
        # the ``diagnosis_concurrency`` reading clusters.
        step = await self.orchestrator.share(pending) or await self._own_diagnosis(held, pending)
        self._waiting -= 1
        await self._settle(held, step)

    async def _own_diagnosis(self, held: _Held, pending: Pending) -> Handled | Exception:
        """The Signal's own diagnosis; when the budget is spent, wait for it, still holding.

        NB: a deferral must not go back to the bus: each redelivery counts towards
        ``max_deliver``, and a burst of sixty failures would dead-letter most of them with no
        report. The Signal stays held (reported in progress, so it is not redelivered) and counts
        against ``batch``, which stops the pulling: the wait is bounded and back-pressured.
        """
        while True:
            try:
                async with self._diagnosing:
                    step: Handled | Exception = await self.orchestrator.diagnose(pending)
            except Exception as exc:
                step = exc
            if not (isinstance(step, Handled) and step.outcome is Outcome.DEFERRED):
                break
            DEFERRALS.inc()
            if self._stopping.is_set():
                break  # handed back to the bus with the wait (one delivery per shutdown)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=max(0.05, step.retry_after))
        if isinstance(step, Exception) or step.outcome is Outcome.DEFERRED:
            await self._release(held, pending)
        return step

    async def _release(self, held: _Held, pending: Pending) -> None:
        try:
            await self.orchestrator.release(pending, owner=held.delivery.signal.msg_id)
        except Exception as exc:  # NB: the claim then expires with its cooldown; said, not hidden
            log.warning("cannot release a cooldown claim", claim=pending.claim_key, error=repr(exc))
            return
        if pending.claim_key:
            CLAIMS_RELEASED.inc()

    def _update_room(self) -> None:
        room = room_to_pull(recording=self._held - self._waiting, waiting=self._waiting, batch=self.batch)
        if room:
            self._room.set()
        else:
            self._room.clear()

    async def _settle(self, held: _Held, step: Handled | Exception) -> None:
        try:
            await self._ack_or_retry(held.delivery, step)
        except Exception as exc:  # NB: unsettled; the bus redelivers it after ack_wait
            FAILURES.labels(error="bug").inc()
            log.error(
                "signal settling crashed", msg_id=held.delivery.signal.msg_id, error=repr(exc), exc_info=exc
            )
        finally:
            self._done(held)

    def _done(self, held: _Held) -> None:
        """A delivery is settled (or left to the bus): it no longer counts against ``batch``."""
        HANDLE_SECONDS.observe(time.perf_counter() - held.pulled_at)
        self._in_hand.discard(held)
        IN_FLIGHT.dec()
        self._held -= 1
        self._update_room()
        if not self._held:
            self._idle.set()

    async def _ack_or_retry(self, delivery: Delivery, step: Handled | Exception) -> None:
        signal = delivery.signal
        if isinstance(step, Exception):
            FAILURES.labels(error=type(step).__name__).inc()
            await self._failed(delivery, step)
            return
        try:
            if step.outcome is Outcome.DEFERRED:
                SIGNALS.labels(outcome=step.outcome.value).inc()
                await delivery.nak(delay=step.retry_after)
                return
            await delivery.ack()
        except BusUnavailable as exc:
            # The work is committed; the redelivery will be recognised as a duplicate.
            FAILURES.labels(error="ack").inc()
            log.warning("ack failed, the Signal will be redelivered", msg_id=signal.msg_id, error=str(exc))
            return
        SIGNALS.labels(outcome=step.outcome.value).inc()
        self.handled += 1

    async def _failed(self, delivery: Delivery, exc: Exception) -> None:
        signal = delivery.signal
        # NB: an outage (store, bus, cluster, Redis) is said in one line; anything else is a bug
        # and comes with its traceback.
        trace = None if isinstance(exc, _OPERATIONAL) else exc
        try:
            if delivery.deliveries >= self.max_deliver:
                DEAD_LETTERED.inc()
                log.error(
                    "signal dead-lettered",
                    msg_id=signal.msg_id,
                    deliveries=delivery.deliveries,
                    error=str(exc) or type(exc).__name__,
                    exc_info=trace,
                )
                await delivery.term()
                return
            delay = exponential(delivery.deliveries, base=RETRY_BASE, cap=RETRY_CAP)
            log.warning(
                "signal handling failed, will retry",
                msg_id=signal.msg_id,
                deliveries=delivery.deliveries,
                retry_in=delay,
                error=str(exc) or type(exc).__name__,
                exc_info=trace,
            )
            await delivery.nak(delay=delay)
        except BusUnavailable as bus_exc:
            log.warning(
                "nak failed, the Signal will be redelivered", msg_id=signal.msg_id, error=str(bus_exc)
            )
