"""Standalone watchers' health over the bus: the registry's judgement of a report, and the reader.

The split topology itself (``aetherius watch`` and ``aetherius orchestrator`` as processes over
NATS) is ``test_standalone_watcher.py``; here the reports are written by hand, with the clock
given, so what is judged fresh or stale is decided by the test and not by the machine's speed.
"""

from __future__ import annotations

import secrets
import time

from aetherius.bus import open_bus
from aetherius.config import MessageBusSettings
from aetherius.orchestrator.clusters import UNREACHABLE, ClusterRegistry
from aetherius.orchestrator.heartbeats import HEALTH_READS, HeartbeatReader
from aetherius.store import Store
from aetherius.watch.health import HealthReport, encode_report, health_key
from tests.orchestrator.test_clusters import Counting, FakeWatcher
from tests.orchestrator.test_diagnose import store as store

INTERVAL = 15.0


def report(cluster_id: str, *, at: float, status: str = "ok") -> HealthReport:
    return HealthReport(
        cluster_id=cluster_id,
        detected_by="configmap",
        reported_at=at,
        interval=INTERVAL,
        status=status,
        initial_list_done=True,
        last_progress="2026-01-01T00:00:00+00:00",
        seconds_since_progress=2.0,
    )


async def test_a_fresh_report_is_recorded_and_a_stale_one_once_as_unreachable(store: Store) -> None:
    counting = Counting(store)
    registry = ClusterRegistry(counting, interval=0.0)
    sent = 1_000_000.0
    await registry.report(report("west", at=sent), now=sent + 1)
    cluster = await store.get_cluster("west")
    assert cluster.detected_by == "configmap"
    health = cluster.watcher_health
    assert (health["status"], health["reported_by"], health["initial_list_done"]) == ("ok", "watcher", True)
    assert health["seconds_since_progress"] == 2.0

    await registry.report(report("west", at=sent), now=sent + 3 * INTERVAL)
    assert (await store.get_cluster("west")).watcher_health["status"] == "ok", "three intervals: still ok"
    written = counting.writes

    late = sent + 3 * INTERVAL + 1
    await registry.report(report("west", at=sent), now=late)
    stale = await store.get_cluster("west")
    assert stale.watcher_health["status"] == UNREACHABLE
    assert stale.watcher_health["reported_status"] == "ok"
    assert stale.watcher_health["seconds_since_report"] == 3 * INTERVAL + 1
    assert counting.writes == written + 1
    for later in (late + 1, late + 100):
        await registry.report(report("west", at=sent), now=later)
    assert counting.writes == written + 1, "recorded once, so last_seen stops moving"

    other = Counting(store)
    await ClusterRegistry(other, interval=0.0).report(report("west", at=sent), now=late + 200)
    assert other.writes == 0, "another replica finds it recorded already"

    await registry.report(report("west", at=late), now=late + 1)
    assert (await store.get_cluster("west")).watcher_health["status"] == "ok", "the watcher is back"


async def test_a_report_for_an_attached_watcher_is_ignored(store: Store) -> None:
    counting = Counting(store)
    registry = ClusterRegistry(counting, interval=0.0)
    registry.attach_watcher("local", method="env", watcher=FakeWatcher())
    await registry.report(report("local", at=time.time(), status="listing"), now=time.time())
    assert counting.writes == 0


async def test_a_malformed_report_is_a_counted_skip(store: Store, nats_url: str) -> None:
    bucket = f"hb_{secrets.token_hex(4)}"
    bus = await open_bus(MessageBusSettings(url=nats_url, kv_bucket=bucket), name="test-heartbeats")
    try:
        kv = await bus.key_value(bucket)
        now = time.time()
        await kv.put(health_key("good"), encode_report(report("good", at=now)))
        await kv.put(health_key("junk"), b"\x00 not json")
        await kv.put(health_key("wrong-shape"), b'{"cluster_id": "x", "status": 3}')
        await kv.put("good.cursor.events._all", b"123")  # the watcher's other keys are not reports
        reader = HeartbeatReader(bus, ClusterRegistry(store, interval=0.0), bucket=bucket, interval=1.0)
        malformed = HEALTH_READS.labels(result="malformed")._value.get()
        # NB: a KV watch opened right after the puts may, on a loaded machine, end its initial
        # values before they arrive (the reader then reads them on its next interval): poll until
        # the good report is read, and count the skips of every poll made.
        polls, recorded = 0, 0
        while recorded == 0 and polls < 20:
            recorded = await reader.poll()
            polls += 1
        assert recorded == 1
        assert HEALTH_READS.labels(result="malformed")._value.get() - malformed in (2, 2 * polls)
        assert (await store.get_cluster("good")).watcher_health["status"] == "ok"
        assert await reader.poll() == 1, "the next poll reads on, the same skips"
    finally:
        await bus.close()


async def test_an_empty_bucket_has_no_reports(nats_url: str) -> None:
    bucket = f"hb_{secrets.token_hex(4)}"
    bus = await open_bus(MessageBusSettings(url=nats_url, kv_bucket=bucket), name="test-heartbeats")
    try:
        kv = await bus.key_value(bucket)
        assert await kv.items("health") == {}
    finally:
        await bus.close()
