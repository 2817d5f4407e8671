"""The Watcher: reflectors → Signals → a bounded queue → the bus, with durable cursors.

One publisher drains the queue in batches, publishes them (pipelined, every ack awaited), and
only then records the batch in the dedup window and advances the cursors past it. When the bus
is slow or down the publisher retries the same batch (message ids make that idempotent), the
queue fills, and the reflectors stop reading — back-pressure instead of drops; a watch that fell
too far behind is answered 410 by the server later and relists, which the dedup window absorbs.

Every ``watcher.heartbeat_interval`` its health goes to the KV bucket too (``watch.health``), so
orchestrators in other processes show a quiet cluster as watched.

Shutdown (SIGTERM): the reflectors stop reading, the publisher flushes what is queued, the
cursors and the dedup window are saved, and ``run`` returns.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aetherius.bus.base import BusUnavailable, StatefulBus
from aetherius.config import Settings
from aetherius.kube import KubeClient
from aetherius.logs import get_logger
from aetherius.ops.metrics import (
    BACKPRESSURE_SECONDS,
    QUEUE_DEPTH,
    SIGNALS_PUBLISHED,
    WATCH_GAPS,
)
from aetherius.signals import ObjectRef, Signal
from aetherius.watch.cursor import CursorStore, DedupWindow
from aetherius.watch.derive import Deriver
from aetherius.watch.health import HealthReporter
from aetherius.watch.model import WatchChange
from aetherius.watch.queue import Item, SignalQueue
from aetherius.watch.reflector import EVENTS, PODS, Reflector

log = get_logger(__name__)

MAX_BATCHES_IN_FLIGHT = 2
STOP_TIMEOUT = 10.0  # seconds for the watcher's tasks to end once cancelled


@dataclass
class WatcherStats:
    published: int = 0
    publish_retries: int = 0
    batches: int = 0


class Watcher:
    """Watch Events and Pods of one cluster and publish their Signals to ``bus``."""

    def __init__(
        self,
        *,
        client: KubeClient,
        bus: StatefulBus,
        settings: Settings,
        cluster_id: str,
        detected_by: str = "config",
        resources: Sequence[str] = ("events", "pods"),
        role: str = "watcher",
    ) -> None:
        self.client = client
        self.bus = bus
        self.settings = settings
        self.cluster_id = cluster_id
        self.detected_by = detected_by  # how the cluster id was found, for the health reports
        self.role = role  # who reports the health: "watcher" or "edge-agent"
        ws = settings.watcher
        self.deriver = Deriver(cluster_id=cluster_id, settings=ws)
        self.dedup = DedupWindow(window=ws.dedup_window.total_seconds(), max_entries=ws.dedup_max_entries)
        self.queue = SignalQueue(ws.buffer_size)
        self.cursors: dict[str, str] = {}
        self.stats = WatcherStats()
        self.store: CursorStore | None = None
        self.reporter: HealthReporter | None = None
        specs = {"events": EVENTS, "pods": PODS}
        namespaces: list[str | None] = list(ws.namespaces) or [None]
        # NB: one slot per worker: at most ``worker_count`` reflectors LIST at once.
        self.list_slots = asyncio.Semaphore(ws.worker_count)
        self.reflectors = [
            Reflector(
                client=client,
                spec=specs[name],
                sink=self,
                settings=ws,
                namespace=ns,
                list_slots=self.list_slots,
            )
            for name in resources
            for ns in namespaces
        ]
        self._listing: set[str] = set()
        self._busy = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._publisher: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._closing = False
        self._counters: dict[tuple[str, str], Any] = {}
        self._health_stop = asyncio.Event()

    # -- ReflectorSink --------------------------------------------------------------------

    def relist_started(self, reflector: Reflector) -> None:
        self._listing.add(reflector.key)
        if reflector.spec is PODS:
            self.deriver.begin_relist(reflector.namespace)

    async def handle(self, reflector: Reflector, changes: Sequence[WatchChange], rv: str | None) -> None:
        if reflector.spec is EVENTS:
            signals = self.deriver.from_events(changes)
        else:
            signals = self.deriver.from_pods(changes)
        await self._enqueue(reflector.key, rv, signals)

    async def checkpoint(self, reflector: Reflector, rv: str) -> None:
        if reflector.key in self._listing:
            self._listing.discard(reflector.key)
            if reflector.spec is PODS:
                self.deriver.end_relist(reflector.namespace)
        await self._enqueue(reflector.key, rv, ())

    async def watch_gone(self, reflector: Reflector, *, quiet_for: float) -> None:
        """One ``WatchGap`` Signal when the Events watch expired: Events are not kept by a relist
        (only objects are), so what was emitted while this watcher could not read may be lost.

        NB: said, not hidden: after a long cut (an edge agent offline longer than the API
        server's watch cache) the incidents of that window may lack their Events.
        """
        if reflector.spec is not EVENTS:
            return  # pods are state: a relist brings every one back
        now = time.time()
        since = now - max(0.0, quiet_for)
        start, end = _rfc3339(since), _rfc3339(now)
        where = f" in namespace {reflector.namespace}" if reflector.namespace else ""
        signal = Signal(
            cluster_id=self.cluster_id,
            source="watcher",
            object=ObjectRef(kind="Cluster", name=self.cluster_id),
            reason="WatchGap",
            message=(
                f"The watch of Events{where} expired (410 Gone) after {quiet_for:.0f} s without progress; "
                f"Events emitted between {start} and {end} may be missing from the incidents of that window."
            ),
            severity="warning",
            dedup_key=f"watchgap.{self.cluster_id}.{reflector.key}.{int(now)}",
            first_seen=start,
            last_seen=end,
            labels={"gap_from": start, "gap_to": end, "resource": reflector.key},
        )
        WATCH_GAPS.inc()
        await self._enqueue(reflector.key, None, [signal])

    async def _enqueue(self, key: str, rv: str | None, signals: Sequence[Signal]) -> None:
        queue = self.queue
        if not signals and not self._busy and queue.empty():
            if rv:
                self.cursors[key] = rv  # nothing published is pending before it
            return
        item = Item(key, rv, signals)
        if not queue.put_nowait(item):
            started = time.monotonic()
            await queue.put(item)
            BACKPRESSURE_SECONDS.inc(time.monotonic() - started)

    # -- publishing -----------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        """Batches go out back to back (up to ``MAX_BATCHES_IN_FLIGHT``, all sharing the bus's
        window of un-acked messages) and are settled strictly in order: a batch's cursors move
        only when it and every batch before it were acknowledged."""
        queue = self.queue
        in_flight: deque[tuple[list[Item], list[Signal], asyncio.Task[None]]] = deque()
        while True:
            if not in_flight or (not queue.empty() and len(in_flight) < MAX_BATCHES_IN_FLIGHT):
                items = await queue.get_batch(self.settings.watcher.publish_batch)
                self._busy = True
                signals = self.dedup.fresh(s for item in items for s in item.signals)
                task = asyncio.create_task(self.bus.publish(signals))
                in_flight.append((items, signals, task))
                continue
            items, signals, task = in_flight.popleft()
            try:
                await task
                self.stats.batches += 1
            except BusUnavailable as exc:
                self.stats.publish_retries += 1
                log.warning("bus unavailable; holding the watch", error=str(exc))
                await self._publish(signals)
            self.dedup.record(signals)
            cursors = self.cursors
            for item in items:
                if item.rv:
                    cursors[item.key] = item.rv
            queue.task_done(len(items))
            self._count(signals)
            self._busy = bool(in_flight) or not queue.empty()

    async def _publish(self, signals: list[Signal]) -> None:
        delay = 0.2
        while signals:
            try:
                await self.bus.publish(signals)
                self.stats.batches += 1
                return
            except BusUnavailable as exc:
                self.stats.publish_retries += 1
                log.warning("bus still unavailable", error=str(exc), retry_in=round(delay, 2))
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 5.0)

    def _count(self, signals: list[Signal]) -> None:
        self.stats.published += len(signals)
        tally: dict[tuple[str, str], int] = {}
        for signal in signals:
            label = (signal.source, signal.reason)
            tally[label] = tally.get(label, 0) + 1
        counters = self._counters
        for label, amount in tally.items():
            counter = counters.get(label)
            if counter is None:
                counter = counters[label] = SIGNALS_PUBLISHED.labels(source=label[0], reason=label[1])
            counter.inc(amount)

    # -- lifecycle ------------------------------------------------------------------------

    async def _restore(self) -> None:
        kv = await self.bus.key_value(self.settings.message_bus.kv_bucket)
        self.store = CursorStore(kv, prefix=self.cluster_id)
        self.reporter = HealthReporter(
            kv,
            self,
            cluster_id=self.cluster_id,
            detected_by=self.detected_by,
            interval=self.settings.watcher.heartbeat_interval.total_seconds(),
            progress_timeout=self.settings.health.progress_timeout.total_seconds(),
            reported_by=self.role,
        )
        await self.store.load_dedup(self.dedup)
        for reflector in self.reflectors:
            rv = await self.store.load_cursor(reflector.key)
            if rv:
                reflector.resource_version = rv
                self.cursors[reflector.key] = rv
                log.info("resuming watch", resource=reflector.key, resource_version=rv)

    async def save(self) -> None:
        """Persist the cursors and the dedup window (acknowledged state only)."""
        if self.store is None:
            return
        await self.store.save_dedup(self.dedup)
        await self.store.save_cursors(dict(self.cursors))

    async def _checkpoint_loop(self) -> None:
        interval = self.settings.watcher.checkpoint_interval.total_seconds()
        while not self._closing:
            await asyncio.sleep(interval)
            QUEUE_DEPTH.set(self.queue.qsize())
            try:
                await self.save()
            except BusUnavailable as exc:
                log.warning("cannot save the cursor yet", error=str(exc))

    async def start(self) -> None:
        """Restore the cursors and start reading and publishing (returns at once)."""
        while True:
            try:
                await self._restore()
                break
            except BusUnavailable as exc:
                log.warning("bus unavailable at start; retrying", error=str(exc))
                await asyncio.sleep(1.0)
        self._publisher = asyncio.create_task(self._publish_loop(), name="watch-publisher")
        self._tasks = [
            asyncio.create_task(reflector.run(), name=f"watch-{reflector.key}")
            for reflector in self.reflectors
        ]
        self._tasks.append(asyncio.create_task(self._checkpoint_loop(), name="watch-checkpoint"))
        if self.reporter is not None:
            self._tasks.append(asyncio.create_task(self.reporter.run(self._health_stop), name="watch-health"))
        for task in [*self._tasks, self._publisher]:
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("watcher task failed", task=task.get_name(), error=repr(task.exception()))
            self._stopped.set()

    async def wait(self) -> None:
        """Until a task of the watcher fails (it should not) or ``stop`` is called."""
        await self._stopped.wait()

    async def stop(self, *, flush_timeout: float = 30.0) -> bool:
        """Stop reading, flush the queue, save the cursors; True when everything was flushed.

        Every step has a deadline: a shutdown that hangs is worse than one that re-publishes
        (deduplicated) on the next start.
        """
        self._closing = True
        self._health_stop.set()
        for reflector in self.reflectors:
            reflector.stop()
        flushed = await cancel_and_wait(self._tasks, timeout=STOP_TIMEOUT)
        if self._publisher is not None:
            try:
                await asyncio.wait_for(self.queue.join(), timeout=flush_timeout)
            except TimeoutError:
                flushed = False
                log.warning("queue not flushed before the deadline", left=self.queue.qsize())
            flushed = await cancel_and_wait([self._publisher], timeout=STOP_TIMEOUT) and flushed
        try:
            await asyncio.wait_for(self.save(), timeout=10.0)
        except (BusUnavailable, TimeoutError) as exc:
            flushed = False
            log.warning(
                "cursor not saved at shutdown; the next start re-publishes (deduplicated)", error=str(exc)
            )
        self._stopped.set()
        log.info("watcher stopped", published=self.stats.published, flushed=flushed, cursors=self.cursors)
        return flushed

    # -- health ---------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return all(r.synced for r in self.reflectors)

    def seconds_since_progress(self) -> float:
        now = time.monotonic()
        return max(now - r.last_progress for r in self.reflectors)

    def signals_behind(self) -> int:
        """Signals read from the cluster and not yet handed to the bus (the dashboard's lag)."""
        return self.queue.qsize()


def _rfc3339(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def cancel_and_wait(tasks: Sequence[asyncio.Task[Any]], *, timeout: float) -> bool:
    """Cancel ``tasks`` and wait at most ``timeout`` for them to end; False if some did not.

    NB: a single ``cancel()`` is not enough. On Python 3.11 ``asyncio.wait_for`` returns the
    result instead of raising when the cancellation meets an already finished inner future
    (nats-py's request/KV put uses it), so a task can swallow one cancellation and go on
    looping; the cancellation is repeated until the task really ended. The caller's own
    cancellation is never swallowed here (``asyncio.wait`` does not consume it).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {task for task in tasks if not task.done()}
    while pending:
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.error("watcher tasks did not stop in time", tasks=sorted(t.get_name() for t in pending))
            return False
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(0.5, remaining))
    return True
