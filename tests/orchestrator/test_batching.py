"""How Signals are grouped on their way to the store: pulls worth a round trip, and what lanes
submit at the same moment written in one transaction."""

from __future__ import annotations

import asyncio

from aetherius.orchestrator.batching import WriteBatcher
from aetherius.orchestrator.consumer import room_to_pull


class RecordingWrites:
    """A write that records each transaction's items and can be held open by the test."""

    def __init__(self) -> None:
        self.transactions: list[list[int]] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.transactions.append(list(items))
        self.started.set()
        await self.gate.wait()
        return [item * 10 for item in items]


async def test_what_lanes_submit_in_one_turn_shares_one_transaction() -> None:
    writes = RecordingWrites()
    batcher = WriteBatcher(writes, max_items=64, max_transactions=2)
    results = await asyncio.gather(*(batcher.submit([n]) for n in range(10)))
    assert writes.transactions == [list(range(10))]
    assert results == [[n * 10] for n in range(10)]


async def test_a_lone_submission_is_written_at_once_and_later_ones_gather_behind_it() -> None:
    writes = RecordingWrites()
    writes.gate.clear()
    batcher = WriteBatcher(writes, max_items=4, max_transactions=1)
    first = asyncio.create_task(batcher.submit([1]))
    await writes.started.wait()
    later = [asyncio.create_task(batcher.submit([n])) for n in range(2, 8)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert writes.transactions == [[1]], "the only transaction allowed is still open"
    writes.gate.set()
    assert await first == [10]
    assert [await task for task in later] == [[n * 10] for n in range(2, 8)]
    # behind the open one, the six waiting ones went in transactions of at most four, in order
    assert writes.transactions == [[1], [2, 3, 4, 5], [6, 7]]


def test_a_pull_waits_for_room_for_half_a_batch_while_signals_are_recorded() -> None:
    assert room_to_pull(recording=0, waiting=0, batch=64) == 64
    assert room_to_pull(recording=63, waiting=0, batch=64) == 0, "one freed place is not worth a pull"
    assert room_to_pull(recording=1, waiting=0, batch=64) == 63
    assert room_to_pull(recording=33, waiting=0, batch=64) == 0
    assert room_to_pull(recording=32, waiting=0, batch=64) == 32
    assert room_to_pull(recording=0, waiting=63, batch=64) == 64, "diagnoses behind do not stop updates"
    assert room_to_pull(recording=0, waiting=64, batch=64) == 0, "but a full diagnosis queue does"
    assert room_to_pull(recording=0, waiting=0, batch=1) == 1
    assert room_to_pull(recording=1, waiting=0, batch=1) == 0
