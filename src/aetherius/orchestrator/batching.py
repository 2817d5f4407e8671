"""Group commit: the Signals that lanes record at the same moment share one transaction.

Each lane of the consumer records its Signals and waits for the result; a transaction per lane
would cost a WAL flush and a handful of round trips per Signal. ``WriteBatcher`` queues what the
lanes submit and writes it in as few transactions as it can: at most ``max_transactions`` run at
once, each taking up to ``max_items`` of what is waiting (a lane's items are never split, so
they are applied together and in order). While one transaction commits the next batch gathers,
so the batch size follows the load: one Signal when the replica is quiet, many under a backlog.
What the lanes submit in one turn of the event loop (the Signals of one pull) starts together.

A transaction that fails is retried one Signal at a time, so one bad Signal (a value the
database refuses) fails alone and the others of its batch are stored.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Counter, Histogram

from aetherius.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

WRITE_BATCH = Histogram(
    "aetherius_orchestrator_write_batch_signals",
    "Signals stored per transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
WRITE_RETRIES = Counter(
    "aetherius_orchestrator_write_split_total",
    "Batched transactions that failed and were retried one Signal at a time",
)


class WriteBatcher(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_items: int,
        max_transactions: int,
    ) -> None:
        self._write = write
        self.max_items = max(1, max_items)
        self.max_transactions = max(1, max_transactions)
        self._waiting: collections.deque[tuple[list[T], asyncio.Future[list[R | Exception]]]] = (
            collections.deque()
        )
        self._running = 0
        self._start_due = False  # a start is scheduled for the next turn of the loop
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, items: Sequence[T]) -> list[R | Exception]:
        """Write ``items`` (in one transaction, in order); per item its result or its error."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[R | Exception]] = loop.create_future()
        self._waiting.append((list(items), future))
        if not self._start_due:
            # NB: not at once: the lanes a pull of Signals started submit one after the other in
            # this turn of the loop; started now, the first would take a transaction alone.
            self._start_due = True
            loop.call_soon(self._start_now)
        return await future

    def _start_now(self) -> None:
        self._start_due = False
        self._start()

    def _start(self) -> None:
        while self._waiting and self._running < self.max_transactions:
            taken = [self._waiting.popleft()]
            count = len(taken[0][0])
            while self._waiting and count + len(self._waiting[0][0]) <= self.max_items:
                count += len(self._waiting[0][0])
                taken.append(self._waiting.popleft())
            self._running += 1
            task = asyncio.create_task(self._transaction(taken), name="orchestrator-write")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _transaction(self, taken: list[tuple[list[T], asyncio.Future[list[R | Exception]]]]) -> None:
        try:
            items = [item for submitted, _ in taken for item in submitted]
            WRITE_BATCH.observe(len(items))
            try:
                results: list[R | Exception] = list(await self._write(items))
            except Exception as exc:
                if len(items) == 1:
                    failed: list[R | Exception] = [exc]
                    _settle(taken[0][1], failed)
                    return
                WRITE_RETRIES.inc()
                log.warning("batched write failed; retrying its Signals one by one", error=str(exc)[:300])
                for submitted, future in taken:
                    _settle(future, [await self._one(item) for item in submitted])
                return
            offset = 0
            for submitted, future in taken:
                _settle(future, results[offset : offset + len(submitted)])
                offset += len(submitted)
        except BaseException as exc:  # cancelled at shutdown: no caller may wait forever
            for _, future in taken:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            raise
        finally:
            self._running -= 1
            self._start()

    async def _one(self, item: T) -> R | Exception:
        try:
            return (await self._write([item]))[0]
        except Exception as exc:
            return exc


def _settle(future: asyncio.Future[list[R | Exception]], results: list[R | Exception]) -> None:
    if not future.done():
        future.set_result(results)
