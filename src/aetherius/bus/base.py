"""The bus interface every producer (Watcher, Event Gateway) and consumer (orchestrator) uses.

Two implementations stand behind it: NATS JetStream for production and an in-process bus for
``aetherius run`` and unit tests. Both keep the same promises: ``publish`` returns only once every
Signal is durably accepted (acknowledged), a Signal's ``msg_id`` is published at most once within
the dedup window, and a pulled ``Delivery`` comes back until it is acked or dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aetherius.signals import Signal


class BusUnavailable(Exception):
    """The bus cannot take or give Signals right now; the caller keeps its data and retries."""


class NoResponders(Exception):
    """A request found nobody subscribed to its subject (an edge agent not connected)."""


class Delivery(Protocol):
    signal: Signal
    deliveries: int  # 1 on the first delivery, more on redelivery

    async def ack(self) -> None: ...

    async def nak(self, *, delay: float | None = None) -> None: ...

    async def term(self) -> None:
        """Give up on this Signal: it goes to the dead-letter subject, counted."""

    async def in_progress(self) -> None:
        """Still being worked on: the bus waits another ``ack_wait`` before redelivering it."""


class SignalBus(Protocol):
    async def publish(self, signals: Sequence[Signal]) -> None:
        """Publish, pipelined, and return once all are acknowledged; raises ``BusUnavailable``."""

    async def pull(self, *, durable: str, batch: int, timeout: float) -> list[Delivery]:
        """Up to ``batch`` Deliveries for the shared durable consumer ``durable`` (work sharing)."""

    async def close(self) -> None: ...


class KeyValue(Protocol):
    """A small durable key/value bucket beside the bus (the Watcher's cursor, dedup window, health).

    It lives with the bus so that the state that says "published up to here" survives exactly as
    long as the published Signals do: JetStream KV for NATS, a dict for the in-process bus.
    """

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    async def items(self, prefix: str) -> dict[str, bytes]:
        """Every key ``<prefix>.…`` with its current value (the watchers' health reports)."""


class StatefulBus(SignalBus, Protocol):
    """A bus that also keeps a producer's state; both implementations are one."""

    @property
    def connected(self) -> bool: ...

    async def key_value(self, bucket: str) -> KeyValue: ...
