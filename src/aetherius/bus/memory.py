"""``MemoryBus``: the in-process bus for ``aetherius run`` and unit tests.

It keeps the promises of the NATS bus so code tested on it behaves the same in production:
a ``msg_id`` is accepted once per duplicate window, the log is bounded (a full bus refuses new
Signals with ``BusUnavailable`` rather than dropping old ones), a durable consumer is shared by
every puller of that name, an un-acked Delivery comes back after ``ack_wait`` or on ``nak``, and
after ``max_deliver`` deliveries it goes to the dead letters, counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from aetherius.bus.base import BusUnavailable, Delivery, KeyValue
from aetherius.ops.metrics import BUS_DEAD_LETTERED, BUS_DUPLICATES, BUS_REDELIVERIES
from aetherius.signals import Signal


@dataclass
class _Consumer:
    next_seq: int = 1  # the first sequence never delivered to this consumer
    in_flight: dict[int, int] = field(default_factory=dict)  # seq -> deliveries so far
    ready: list[tuple[float, int]] = field(default_factory=list)  # heap of (ready at, seq) to redeliver
    ack_deadlines: dict[int, float] = field(default_factory=dict)


class MemoryDelivery:
    def __init__(
        self, bus: MemoryBus, consumer: _Consumer, seq: int, signal: Signal, deliveries: int
    ) -> None:
        self.signal = signal
        self.deliveries = deliveries
        self._bus = bus
        self._consumer = consumer
        self._seq = seq
        self._settled = False

    def _settle(self) -> bool:
        if self._settled or self._consumer.in_flight.get(self._seq) != self.deliveries:
            return False  # already settled, or redelivered to someone else after ack_wait
        self._settled = True
        return True

    async def ack(self) -> None:
        if self._settle():
            self._bus._finish(self._consumer, self._seq)

    async def nak(self, *, delay: float | None = None) -> None:
        if not self._settle():
            return
        if self.deliveries >= self._bus.max_deliver:
            self._bus._dead_letter(self._consumer, self._seq, cause="max_deliver")
            return
        self._consumer.ack_deadlines.pop(self._seq, None)
        heapq.heappush(self._consumer.ready, (time.monotonic() + (delay or 0.0), self._seq))
        self._bus._wake()

    async def term(self) -> None:
        if self._settle():
            self._bus._dead_letter(self._consumer, self._seq, cause="term")

    async def in_progress(self) -> None:
        if not self._settled and self._consumer.in_flight.get(self._seq) == self.deliveries:
            self._consumer.ack_deadlines[self._seq] = time.monotonic() + self._bus.ack_wait


class MemoryKeyValue:
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    async def put(self, key: str, value: bytes) -> None:
        self._data[key] = bytes(value)

    async def items(self, prefix: str) -> dict[str, bytes]:
        return {key: value for key, value in self._data.items() if key.startswith(f"{prefix}.")}


class MemoryBus:
    """Every Signal in one process-local log, consumed by named durable consumers."""

    def __init__(
        self,
        *,
        max_messages: int = 100_000,
        duplicate_window: float = 3600.0,
        max_deliver: int = 5,
        ack_wait: float = 60.0,
    ) -> None:
        self.max_messages = max_messages
        self.duplicate_window = duplicate_window
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait
        self.dead_letters: list[Signal] = []
        self._log: dict[int, Signal] = {}
        self._last_seq = 0
        self._seen: OrderedDict[str, float] = OrderedDict()  # msg_id -> accepted at (monotonic)
        self._consumers: dict[str, _Consumer] = {}
        self._done: dict[int, set[str]] = {}
        self._buckets: dict[str, MemoryKeyValue] = {}
        self._changed = asyncio.Event()
        self._closed = False

    @property
    def connected(self) -> bool:
        return not self._closed

    def __len__(self) -> int:
        return len(self._log)

    async def publish(self, signals: Sequence[Signal]) -> None:
        if self._closed:
            raise BusUnavailable("the in-process bus is closed")
        now = time.monotonic()
        self._expire_seen(now)
        fresh = [s for s in signals if s.msg_id not in self._seen]
        BUS_DUPLICATES.inc(len(signals) - len(fresh))
        if len(self._log) + len(fresh) > self.max_messages:
            raise BusUnavailable(f"the in-process bus is full ({self.max_messages} Signals not yet consumed)")
        for signal in fresh:
            if signal.msg_id in self._seen:
                BUS_DUPLICATES.inc()
                continue
            self._seen[signal.msg_id] = now
            self._last_seq += 1
            self._log[self._last_seq] = signal
        self._wake()

    def _expire_seen(self, now: float) -> None:
        while self._seen:
            msg_id, accepted = next(iter(self._seen.items()))
            if now - accepted < self.duplicate_window:
                return
            del self._seen[msg_id]

    async def pull(self, *, durable: str, batch: int, timeout: float) -> list[Delivery]:
        if self._closed:
            raise BusUnavailable("the in-process bus is closed")
        consumer = self._consumers.setdefault(durable, _Consumer())
        deadline = time.monotonic() + timeout
        while True:
            out = self._take(consumer, batch)
            remaining = deadline - time.monotonic()
            if out or remaining <= 0 or self._closed:
                return out
            self._changed.clear()
            wait = min(remaining, self._next_ready_in(consumer))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(wait, 0.001))

    def _next_ready_in(self, consumer: _Consumer) -> float:
        now = time.monotonic()
        times = [at for at, _ in consumer.ready[:1]] + list(consumer.ack_deadlines.values())
        return min((t - now for t in times), default=3600.0)

    def _take(self, consumer: _Consumer, batch: int) -> list[Delivery]:
        now = time.monotonic()
        for seq, deadline in list(consumer.ack_deadlines.items()):
            if deadline <= now:  # not acked in time: redeliver
                del consumer.ack_deadlines[seq]
                heapq.heappush(consumer.ready, (now, seq))
        out: list[Delivery] = []
        while consumer.ready and consumer.ready[0][0] <= now and len(out) < batch:
            _, seq = heapq.heappop(consumer.ready)
            if seq in self._log and seq in consumer.in_flight:
                self._deliver(consumer, seq, out, now)
        while consumer.next_seq <= self._last_seq and len(out) < batch:
            seq = consumer.next_seq
            consumer.next_seq += 1
            if seq in self._log:
                consumer.in_flight[seq] = 0
                self._deliver(consumer, seq, out, now)
        return out

    def _deliver(self, consumer: _Consumer, seq: int, out: list[Delivery], now: float) -> None:
        deliveries = consumer.in_flight[seq] + 1
        if deliveries > self.max_deliver:  # ack_wait expired on the last allowed delivery
            self._dead_letter(consumer, seq, cause="max_deliver")
            return
        if deliveries > 1:
            BUS_REDELIVERIES.inc()
        consumer.in_flight[seq] = deliveries
        consumer.ack_deadlines[seq] = now + self.ack_wait
        out.append(MemoryDelivery(self, consumer, seq, self._log[seq], deliveries))

    def _finish(self, consumer: _Consumer, seq: int) -> None:
        consumer.in_flight.pop(seq, None)
        consumer.ack_deadlines.pop(seq, None)
        done = self._done.setdefault(seq, set())
        done.update(name for name, c in self._consumers.items() if c is consumer)
        if len(done) >= len(self._consumers):  # every durable is through with it: retire
            self._log.pop(seq, None)
            self._done.pop(seq, None)
        self._wake()

    def _dead_letter(self, consumer: _Consumer, seq: int, *, cause: str) -> None:
        signal = self._log.get(seq)
        if signal is not None:
            self.dead_letters.append(signal)
            BUS_DEAD_LETTERED.labels(cause=cause).inc()
        self._finish(consumer, seq)

    def _wake(self) -> None:
        self._changed.set()

    async def key_value(self, bucket: str) -> KeyValue:
        return self._buckets.setdefault(bucket, MemoryKeyValue())

    async def close(self) -> None:
        self._closed = True
        self._wake()
