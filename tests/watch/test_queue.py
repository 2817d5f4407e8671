"""The Watcher's queue is bounded in Signals, not items: a chunk of many Signals waits its turn."""

from __future__ import annotations

import asyncio

from aetherius.signals import ObjectRef, Signal
from aetherius.watch.queue import Item, SignalQueue


def _signals(n: int) -> list[Signal]:
    return [
        Signal(
            cluster_id="c",
            source="event",
            object=ObjectRef(kind="Pod", name=f"p{i}"),
            reason="BackOff",
            message="",
            severity="info",
            dedup_key=f"k{i}",
        )
        for i in range(n)
    ]


def _item(n: int, rv: str = "1") -> Item:
    return Item("events._all", rv, _signals(n))


async def test_the_bound_counts_signals_and_a_put_waits_for_room() -> None:
    queue = SignalQueue(10)
    assert queue.put_nowait(_item(6))
    assert not queue.put_nowait(_item(5)), "6 + 5 Signals do not fit in 10"
    waiting = asyncio.create_task(queue.put(_item(5, rv="2")))
    await asyncio.sleep(0)
    assert not waiting.done() and queue.qsize() == 6
    taken = await queue.get_batch(1)
    assert [len(item.signals) for item in taken] == [6]
    await asyncio.wait_for(waiting, 1)
    assert queue.qsize() == 5 and not queue.full()


async def test_an_item_without_signals_counts_one_so_cursor_moves_stay_bounded() -> None:
    queue = SignalQueue(2)
    assert queue.put_nowait(_item(0))
    assert queue.put_nowait(_item(0))
    assert queue.full()
    assert not queue.put_nowait(_item(0))


async def test_an_item_larger_than_the_bound_enters_alone_once_the_queue_is_empty() -> None:
    queue = SignalQueue(4)
    assert queue.put_nowait(_item(1))
    big = asyncio.create_task(queue.put(_item(9)))
    await asyncio.sleep(0)
    assert not big.done()
    await queue.get_batch(100)
    await asyncio.wait_for(big, 1)
    assert queue.qsize() == 9 and queue.full()


async def test_waiting_putters_enter_oldest_first() -> None:
    queue = SignalQueue(4)
    assert queue.put_nowait(_item(4, rv="0"))
    first = asyncio.create_task(queue.put(_item(3, rv="1")))
    await asyncio.sleep(0)
    second = asyncio.create_task(queue.put(_item(1, rv="2")))
    await asyncio.sleep(0)
    assert not queue.put_nowait(_item(1)), "a put must not jump the waiting ones"
    await queue.get_batch(4)
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    assert [item.rv for item in await queue.get_batch(100)] == ["1", "2"]


async def test_a_cancelled_putter_lets_the_next_one_in() -> None:
    queue = SignalQueue(2)
    assert queue.put_nowait(_item(2, rv="0"))
    first = asyncio.create_task(queue.put(_item(2, rv="1")))
    await asyncio.sleep(0)
    second = asyncio.create_task(queue.put(_item(1, rv="2")))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await queue.get_batch(10)
    await asyncio.wait_for(second, 1)
    assert [item.rv for item in await queue.get_batch(10)] == ["2"]


async def test_get_batch_takes_items_up_to_the_batch_size_and_join_waits_for_task_done() -> None:
    queue = SignalQueue(100)
    for n in (3, 3, 3, 3):
        assert queue.put_nowait(_item(n))
    taken = await queue.get_batch(5)
    assert [len(item.signals) for item in taken] == [3, 3], "stops once 5 Signals are taken"
    getter = asyncio.create_task(queue.get_batch(100))
    joined = asyncio.create_task(queue.join())
    await asyncio.sleep(0)
    assert getter.done() and len(getter.result()) == 2
    assert not joined.done()
    queue.task_done(len(taken))
    await asyncio.sleep(0)
    assert not joined.done(), "two items are still unsettled"
    queue.task_done(2)
    await asyncio.wait_for(joined, 1)


async def test_get_batch_waits_for_an_item() -> None:
    queue = SignalQueue(10)
    getter = asyncio.create_task(queue.get_batch(10))
    await asyncio.sleep(0)
    assert not getter.done()
    assert queue.put_nowait(_item(2))
    assert [len(item.signals) for item in await asyncio.wait_for(getter, 1)] == [2]
