"""No lost and no duplicated Signal, through real faults: sim over HTTP, real client, real NATS.

Each test changes Events while a fault is active, waits until the watcher's acknowledged cursor
reached the sim's last change, and compares the sim's ledger with what reached JetStream. The
watcher's own publish count is checked too: relists must not even re-send (dedup window).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aetherius.ops.metrics import WATCH_RELISTS, WATCH_RESTARTS
from tests.services import PrivateNats
from tests.watch.harness import Harness, assert_exactly_once, harness


def _metric(counter: object, **labels: str) -> float:
    return float(counter.labels(**labels)._value.get())  # type: ignore[attr-defined]


async def _run(h: Harness, phase: int, *, n: int = 10, bump: bool = True) -> None:
    """Create ``n`` Events and repeat every other one. Before the watcher's first list or
    during a relist only final states are observable, so those phases do not repeat."""
    names = [f"ev-{phase}-{i}" for i in range(n)]
    for name in names:
        h.create(name)
    if bump:
        for name in names[::2]:
            h.bump(name)


async def _finish(h: Harness) -> int:
    """Every Signal exactly once; the number of ``WatchGap`` Signals (one per expired Events watch)."""
    await h.caught_up()
    assert h.watcher is not None
    published_by_watcher = h.watcher.stats.published
    expected = h.expected()
    await h.stop()
    published = await h.published()
    gaps = [m for m in published if m.startswith("watchgap.")]
    assert_exactly_once(expected, [m for m in published if not m.startswith("watchgap.")])
    assert published_by_watcher == len(expected) + len(gaps), (
        "the watcher re-sent occurrences it had published"
    )
    return len(gaps)


async def test_watch_closed_mid_stream(tmp_path: Path, nats_url: str) -> None:
    async with harness(tmp_path, nats_url) as h:
        await _run(h, 0, bump=False)
        await h.start()
        await h.caught_up()
        before = _metric(WATCH_RESTARTS, resource="events", cause="closed")
        for phase in range(1, 4):
            await h.watching()  # NB: after a close, until the watcher has reconnected
            assert h.sim.faults.close_watches() >= 1
            await _run(h, phase)
        h.sim.faults.close_watches(abort=True)
        await _run(h, 9)
        await _finish(h)
        assert _metric(WATCH_RESTARTS, resource="events", cause="closed") > before


async def test_gone_in_stream_relists_without_duplicates(tmp_path: Path, nats_url: str) -> None:
    async with harness(tmp_path, nats_url) as h:
        await _run(h, 0, n=30, bump=False)
        await h.start()
        await h.caught_up()
        before = _metric(WATCH_RELISTS, resource="events", cause="gone")
        await h.watching()
        assert h.sim.faults.gone_in_stream() >= 1
        await _run(h, 1, bump=False)
        await h.caught_up()
        await _run(h, 2)
        assert await _finish(h) == 1, "one WatchGap: Events of the gap may be missing, and it says so"
        assert _metric(WATCH_RELISTS, resource="events", cause="gone") == before + 1


async def test_gone_on_connect_http_and_in_stream(tmp_path: Path, nats_url: str) -> None:
    async with harness(tmp_path, nats_url) as h:
        await _run(h, 0, bump=False)
        await h.start()
        await h.caught_up()
        before = _metric(WATCH_RELISTS, resource="events", cause="gone")
        for phase, in_stream in ((1, False), (2, True)):
            h.sim.faults.gone_on_connect(1, in_stream=in_stream)
            h.sim.faults.close_watches()
            await _run(h, phase, bump=False)
            await h.caught_up()
        await _run(h, 3)
        await _finish(h)
        assert h.sim.faults.injected["gone_on_connect"] == 2
        assert _metric(WATCH_RELISTS, resource="events", cause="gone") == before + 2


async def test_expired_continue_token_restarts_the_list(tmp_path: Path, nats_url: str) -> None:
    async with harness(tmp_path, nats_url, page_size=3) as h:
        await _run(h, 0, n=40, bump=False)
        before = _metric(WATCH_RELISTS, resource="events", cause="continue_expired")
        # 40 Events in 3-item pages: the snapshot expires as soon as the first page is answered,
        # before the watcher can ask for the second (it then relists, counted below).
        await h.start()
        async with asyncio.timeout(20):  # NB: not wait_for, whose own task would wake a turn later
            await h.sim.faults.paged_list_started()
        h.sim.faults.expire_continue_tokens()
        await _run(h, 1, n=5, bump=False)
        await _finish(h)
        assert _metric(WATCH_RELISTS, resource="events", cause="continue_expired") == before + 1


async def test_throttled_and_server_errors(tmp_path: Path, nats_url: str) -> None:
    async with harness(tmp_path, nats_url) as h:
        await _run(h, 0, bump=False)
        h.sim.faults.throttle(2, retry_after=0.3)
        await h.start()
        await h.caught_up()
        h.sim.faults.error(2, status=500)
        h.sim.faults.close_watches()
        await _run(h, 1)
        await h.caught_up()
        h.sim.faults.throttle(1, retry_after=0.2, path_prefix="/api/v1/events")
        h.sim.faults.close_watches()
        await _run(h, 2)
        await _finish(h)
        assert h.sim.faults.injected["http_429"] == 3
        assert h.sim.faults.injected["http_500"] == 2


async def test_stalled_stream_hits_the_inactivity_timeout(tmp_path: Path, nats_url: str) -> None:
    async with harness(tmp_path, nats_url, read_inactivity_timeout="1s") as h:
        await _run(h, 0, bump=False)
        await h.start()
        await h.caught_up()
        before = _metric(WATCH_RESTARTS, resource="events", cause="connection")
        await h.watching()
        assert h.sim.faults.stall(30) >= 1  # far longer than the test waits: only the timeout saves it
        await _run(h, 1)
        await h.caught_up(timeout=15)
        await _finish(h)
        assert _metric(WATCH_RESTARTS, resource="events", cause="connection") > before


async def test_nats_stopped_and_restarted_mid_run(tmp_path: Path, own_nats: PrivateNats) -> None:
    async with harness(tmp_path, own_nats.url, buffer_size=8) as h:
        await _run(h, 0, bump=False)
        await h.start()
        await h.caught_up()
        own_nats.stop()
        await _run(h, 1, n=40)  # more than the queue holds: the watcher must stop reading
        assert h.watcher is not None
        for _ in range(100):
            if h.watcher.stats.publish_retries > 0 and h.watcher.queue.full():
                break
            await asyncio.sleep(0.1)
        assert h.watcher.stats.publish_retries > 0, "no publish was retried within 10s of NATS stopping"
        assert h.watcher.queue.full(), "the watcher should hold the stream, not buffer without bound"
        own_nats.start()
        await _run(h, 2)
        await h.caught_up(timeout=30)
        await _finish(h)
