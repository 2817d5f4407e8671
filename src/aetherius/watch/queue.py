"""The Watcher's queue between the reflectors and the publisher, bounded in Signals.

A reflector hands over a whole received chunk of watch events at once (hundreds of Signals in
one item), so the bound cannot be a number of items as in ``asyncio.Queue``: here it is the
number of Signals queued (an item without Signals, a cursor move, counts as one). A put that
does not fit waits until the publisher took enough (back-pressure: the reflector stops reading);
an item larger than the whole bound is let in alone once the queue is empty, so it can never
wait forever. Waiting putters are let in oldest first.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from aetherius.signals import Signal


@dataclass(slots=True)
class Item:
    key: str  # the reflector's cursor name
    rv: str | None  # the cursor once every Signal of this item (and before it) is acknowledged
    signals: Sequence[Signal]


class SignalQueue:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._items: deque[Item] = deque()
        self._size = 0  # Signals queued (an item without any counts one)
        self._unfinished = 0  # items taken or queued whose ``task_done`` is still due
        self._putters: deque[asyncio.Event] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def qsize(self) -> int:
        """The Signals queued."""
        return self._size

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return self._size >= self.capacity

    def _fits(self, weight: int) -> bool:
        return not self._items or self._size + weight <= self.capacity

    async def put(self, item: Item) -> None:
        """Queue ``item``, waiting (behind any earlier waiting putter) until it fits."""
        weight = len(item.signals) or 1
        if self._putters or not self._fits(weight):
            turn = asyncio.Event()
            self._putters.append(turn)
            try:
                while self._putters[0] is not turn or not self._fits(weight):
                    turn.clear()
                    await turn.wait()
            finally:
                self._putters.remove(turn)
                self._wake_putter()  # the next one may fit as well
        self._append(item, weight)

    def put_nowait(self, item: Item) -> bool:
        """Queue ``item`` if it fits without waiting (and nobody waits before it)."""
        weight = len(item.signals) or 1
        if self._putters or not self._fits(weight):
            return False
        self._append(item, weight)
        return True

    def _append(self, item: Item, weight: int) -> None:
        self._items.append(item)
        self._size += weight
        self._unfinished += 1
        self._idle.clear()
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def _wake_putter(self) -> None:
        if self._putters:
            self._putters[0].set()

    async def get_batch(self, signals: int) -> list[Item]:
        """The oldest items, at least one, more while they hold fewer than ``signals`` Signals."""
        while not self._items:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        items, taken, weight = self._items, [], 0
        count = 0
        while items and count < signals:
            item = items.popleft()
            taken.append(item)
            count += len(item.signals)
            weight += len(item.signals) or 1
        self._size -= weight
        self._wake_putter()
        return taken

    def task_done(self, items: int = 1) -> None:
        """``items`` taken items are settled (published, cursors moved)."""
        self._unfinished -= items
        if self._unfinished <= 0:
            self._unfinished = 0
            self._idle.set()

    async def join(self) -> None:
        """Until every item queued so far was taken and settled."""
        await self._idle.wait()
