"""``resync_period`` and ``worker_count`` of watcher.yaml do what they say, against the sim.

A resync relists once the period has passed (at the end of the watch then open) and re-sends
nothing (dedup window, message ids); ``worker_count`` bounds how many reflectors LIST at once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aetherius.ops.metrics import WATCH_RELISTS, WATCH_RESTARTS
from tests.watch.harness import assert_exactly_once, harness


def _closed() -> float:
    return float(WATCH_RESTARTS.labels(resource="events", cause="closed")._value.get())  # type: ignore[attr-defined]


def _relists(cause: str) -> float:
    return float(WATCH_RELISTS.labels(resource="events", cause=cause)._value.get())  # type: ignore[attr-defined]


async def test_a_resync_relists_and_resends_nothing(tmp_path: Path, nats_url: str) -> None:
    async with harness(
        tmp_path, nats_url, resync_period="1s", watch_timeout_min="1s", watch_timeout_max="1s"
    ) as h:
        for i in range(12):
            h.create(f"before-{i}")
        before = _relists("resync")
        await h.start()
        await h.caught_up()
        deadline = time.monotonic() + 30
        while _relists("resync") < before + 2:  # two full periods: each ends in a relist
            assert time.monotonic() < deadline, "no resync relist within 30s"
            await asyncio.sleep(0.1)
        for i in range(5):
            h.create(f"after-{i}")
        await h.caught_up()
        assert h.watcher is not None
        sent = h.watcher.stats.published
        expected = h.expected()
        await h.stop()
        assert_exactly_once(expected, await h.published())
        assert sent == len(expected), "a resync re-sent Signals already published"


async def test_a_resync_period_of_zero_never_relists(tmp_path: Path, nats_url: str) -> None:
    async with harness(
        tmp_path, nats_url, resync_period="0s", watch_timeout_min="1s", watch_timeout_max="1s"
    ) as h:
        h.create("only")
        before = _relists("resync")
        watcher = await h.start()
        await h.caught_up()
        relists = [reflector.relists for reflector in watcher.reflectors]
        closed = _closed()
        deadline = time.monotonic() + 30
        while _closed() < closed + 3:  # three 1 s watches ended and reopened, none relisted
            assert time.monotonic() < deadline, "the watch did not end three times within 30s"
            await asyncio.sleep(0.1)
        assert _relists("resync") == before
        assert [reflector.relists for reflector in watcher.reflectors] == relists


async def test_worker_count_bounds_the_lists_in_flight(tmp_path: Path, nats_url: str) -> None:
    namespaces = ["a", "b", "c", "d"]
    async with harness(tmp_path, nats_url, namespaces=namespaces, worker_count=1, page_size=2) as h:
        for ns in namespaces:
            for i in range(6):
                h.create(f"{ns}-{i}", namespace=ns)
        watcher = await h.start()
        assert watcher.client is not None
        in_flight, most = 0, 0
        real = watcher.client.get_bytes

        async def counted(path: str, **kwargs: Any) -> bytes:
            nonlocal in_flight, most
            listing = "watch" not in (kwargs.get("params") or {})
            in_flight += listing
            most = max(most, in_flight)
            try:
                return await real(path, **kwargs)
            finally:
                in_flight -= listing

        # NB: a spy on the real client (every request still goes to the sim over HTTP), installed
        # before the reflectors' first LIST: they start on the next turn of the loop.
        watcher.client.get_bytes = counted  # type: ignore[method-assign]
        deadline = time.monotonic() + 20
        while not all(r.synced for r in watcher.reflectors):
            assert time.monotonic() < deadline, "the four namespaces were not listed within 20s"
            await asyncio.sleep(0.05)
        assert sum(r.relists for r in watcher.reflectors) == len(namespaces)
        assert most == 1, f"{most} LISTs in flight with worker_count 1"
