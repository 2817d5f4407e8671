"""The watcher's shutdown never hangs, even on a task that swallows its cancellation.

On Python 3.11 ``asyncio.wait_for`` (used by nats-py for every request, so for each cursor save)
returns the result instead of raising when a cancellation meets an already finished inner future.
The checkpoint loop then sleeps and saves on, and a single ``cancel()`` + ``await`` waited for it
forever: ``Watcher.stop`` hung under load.
"""

from __future__ import annotations

import asyncio

from aetherius.watch.watcher import cancel_and_wait


class Stubborn:
    """Loops like the checkpoint loop and ignores the first ``swallow`` cancellations."""

    def __init__(self, swallow: int) -> None:
        self.swallow = swallow
        self.swallowed = 0
        self.running = asyncio.Event()  # inside the loop: a cancel now meets the ``try``

    async def run(self) -> None:
        self.running.set()
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if self.swallowed >= self.swallow:
                    raise
                self.swallowed += 1


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    stubborn = Stubborn(2)
    task = asyncio.create_task(stubborn.run())
    await stubborn.running.wait()
    assert await asyncio.wait_for(cancel_and_wait([task], timeout=10), timeout=20)
    assert task.cancelled() and stubborn.swallowed == 2


async def test_a_task_that_does_not_end_is_reported_not_waited_for() -> None:
    stubborn = Stubborn(10**9)
    task = asyncio.create_task(stubborn.run())
    await stubborn.running.wait()
    try:
        assert not await asyncio.wait_for(cancel_and_wait([task], timeout=0.3), timeout=20)
        assert not task.done() and stubborn.swallowed >= 1
    finally:
        stubborn.swallow = 0
        task.cancel()
        await asyncio.wait({task}, timeout=10)
    assert task.cancelled()


async def test_finished_and_failed_tasks_need_no_wait() -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    failed = asyncio.create_task(fail())
    done = asyncio.create_task(asyncio.sleep(0))
    await asyncio.wait({failed, done})
    assert await cancel_and_wait([failed, done], timeout=0.1)
    assert isinstance(failed.exception(), RuntimeError)
