"""The bus the API tests publish to: ``MemoryBus`` when the bus room's branch is merged.

Until then a minimal in-process bus keeping the ``SignalBus`` promises the API relies on (publish
is all-or-nothing, a ``msg_id`` is accepted once, a closed bus raises ``BusUnavailable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aetherius.bus.base import BusUnavailable
from aetherius.signals import Signal


@dataclass
class _Delivery:
    signal: Signal
    deliveries: int = 1

    async def ack(self) -> None:
        return None

    async def nak(self, *, delay: float | None = None) -> None:
        return None

    async def term(self) -> None:
        return None


class ListBus:
    def __init__(self) -> None:
        self.log: list[Signal] = []
        self._ids: set[str] = set()
        self._offsets: dict[str, int] = {}
        self.closed = False

    async def publish(self, signals: Sequence[Signal]) -> None:
        if self.closed:
            raise BusUnavailable("the bus is closed")
        for signal in signals:
            if signal.msg_id not in self._ids:
                self._ids.add(signal.msg_id)
                self.log.append(signal)

    async def pull(self, *, durable: str, batch: int, timeout: float) -> list[_Delivery]:
        start = self._offsets.get(durable, 0)
        taken = self.log[start : start + batch]
        self._offsets[durable] = start + len(taken)
        return [_Delivery(signal=s) for s in taken]

    async def close(self) -> None:
        self.closed = True


try:
    from aetherius.bus import MemoryBus as TestBus  # type: ignore[attr-defined]
except ImportError:  # NB: the bus room's branch is not merged yet
    TestBus = ListBus  # type: ignore[misc,assignment]
