"""The cluster registry: last seen from Signals, throttled per cluster; a local watcher's health."""

from __future__ import annotations

from typing import Any

from aetherius.orchestrator.clusters import CLUSTER_WRITES, FROM_SIGNALS, ClusterRegistry
from aetherius.store import Store, StoreUnavailable
from tests.orchestrator.test_diagnose import store as store


class Counting:
    """The real store, counting the registry's writes (and failing them on demand)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.writes = 0
        self.down = False

    async def upsert_cluster(self, cluster_id: str, **kwargs: Any) -> Any:
        if self.down:
            raise StoreUnavailable("database not answering")
        self.writes += 1
        return await self.store.upsert_cluster(cluster_id, **kwargs)

    async def get_cluster(self, cluster_id: str) -> Any:
        return await self.store.get_cluster(cluster_id)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeWatcher:
    def __init__(self) -> None:
        self.synced = False
        self.idle = 1.0

    def seconds_since_progress(self) -> float:
        return self.idle


async def test_signals_record_the_cluster_at_most_once_per_interval(store: Store) -> None:
    counting, clock = Counting(store), Clock()
    registry = ClusterRegistry(counting, interval=5.0, clock=clock)
    for _ in range(100):
        await registry.seen("prod")
    assert counting.writes == 1
    first = await store.get_cluster("prod")
    assert first.detected_by == FROM_SIGNALS and first.watcher_health == {}
    clock.now = 4.9
    await registry.seen("prod")
    await registry.seen("staging")
    assert counting.writes == 2, "another cluster has its own interval"
    clock.now = 5.0
    await registry.seen("prod")
    assert counting.writes == 3
    assert (await store.get_cluster("prod")).last_seen >= first.last_seen


async def test_a_failed_write_never_fails_the_signal_and_is_counted(store: Store) -> None:
    counting, clock = Counting(store), Clock()
    registry = ClusterRegistry(counting, interval=5.0, clock=clock)
    counting.down = True
    before = CLUSTER_WRITES.labels(result="error")._value.get()
    await registry.seen("down")
    assert CLUSTER_WRITES.labels(result="error")._value.get() == before + 1
    counting.down = False
    await registry.seen("down")
    assert counting.writes == 0, "tried again one interval later, not per Signal"
    clock.now = 5.0
    await registry.seen("down")
    assert counting.writes == 1


async def test_a_watchers_detection_is_kept_by_another_replica(store: Store) -> None:
    clock = Clock()
    local = ClusterRegistry(Counting(store), interval=5.0, clock=clock, role="run")
    watcher = FakeWatcher()
    local.attach_watcher("east", method="configmap", watcher=watcher)
    await local.heartbeat()
    cluster = await store.get_cluster("east")
    assert cluster.detected_by == "configmap"
    assert cluster.watcher_health["status"] == "listing"
    assert cluster.watcher_health["initial_list_done"] is False
    watcher.synced = True
    clock.now = 5.0
    await local.heartbeat()
    health = (await store.get_cluster("east")).watcher_health
    assert (health["status"], health["initial_list_done"], health["reported_by"]) == ("ok", True, "run")
    watcher.idle = 10_000.0
    clock.now = 10.0
    await local.heartbeat()
    assert (await store.get_cluster("east")).watcher_health["status"] == "stalled"

    remote = ClusterRegistry(Counting(store), interval=5.0, clock=Clock())
    await remote.seen("east")
    kept = await store.get_cluster("east")
    assert kept.detected_by == "configmap", "a replica without the watcher keeps its detection"
    assert kept.watcher_health["reported_by"] == "run", "and its health"
