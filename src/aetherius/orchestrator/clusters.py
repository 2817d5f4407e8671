"""Clusters as the orchestrator sees them: which ones send Signals, how each was named, its watcher.

Every Signal names its cluster; the registry records it in the store (``upsert_cluster``) so the
dashboard and ``GET /api/v1/clusters`` list it with a recent ``last_seen``. Writes are throttled
per cluster and replica (at most one per ``interval``), never one per Signal. Where the watcher
runs in the same process (``aetherius run``/``demo``) it is attached: the registry then also
records how the cluster id was detected and the watcher's health, on a heartbeat, so a quiet
cluster still shows it is watched and when its initial list completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client import Counter

from aetherius.logs import get_logger
from aetherius.store import NotFound

log = get_logger(__name__)

CLUSTER_WRITES = Counter(
    "aetherius_orchestrator_cluster_updates_total", "Cluster last-seen/health writes, by result", ["result"]
)
# How a cluster the orchestrator learns of only through its Signals is said to be detected.
FROM_SIGNALS = "signals"
DEFAULT_INTERVAL = 5.0


class ClusterStore(Protocol):
    async def upsert_cluster(
        self,
        cluster_id: str,
        *,
        name: str | None = None,
        detected_by: str = "config",
        watcher_health: dict[str, Any] | None = None,
    ) -> Any: ...

    async def get_cluster(self, cluster_id: str) -> Any: ...


class WatcherState(Protocol):
    """What the registry reads of an in-process ``Watcher``."""

    @property
    def synced(self) -> bool: ...

    def seconds_since_progress(self) -> float: ...


def watcher_health(watcher: WatcherState, *, progress_timeout: float, role: str) -> dict[str, Any]:
    """The watcher's health as the store keeps it (``status`` is what the dashboard shows)."""
    idle = watcher.seconds_since_progress()
    synced = watcher.synced
    status = "ok" if synced else "listing"
    if idle >= progress_timeout:
        status = "stalled"
    return {
        "status": status,
        "initial_list_done": synced,
        "last_progress": (datetime.now(UTC) - timedelta(seconds=idle)).isoformat(),
        "seconds_since_progress": round(idle, 1),
        "reported_by": role,
    }


class ClusterRegistry:
    def __init__(
        self,
        store: ClusterStore,
        *,
        interval: float = DEFAULT_INTERVAL,
        progress_timeout: float = 300.0,
        role: str = "orchestrator",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.interval = interval
        self.progress_timeout = progress_timeout
        self.role = role
        self.clock = clock
        self._next_write: dict[str, float] = {}
        self._method: dict[str, str] = {}  # cluster id -> how it was detected, once known
        self._watchers: dict[str, WatcherState] = {}

    def attach_watcher(self, cluster_id: str, *, method: str, watcher: WatcherState) -> None:
        """The in-process watcher of ``cluster_id`` (detected by ``method``): recorded at once."""
        self._method[cluster_id] = method
        self._watchers[cluster_id] = watcher
        self._next_write.pop(cluster_id, None)

    def detach_watcher(self, cluster_id: str) -> None:
        self._watchers.pop(cluster_id, None)

    async def seen(self, cluster_id: str) -> None:
        """A Signal of ``cluster_id`` arrived: record it unless it was recorded < ``interval`` ago.

        Never raises: a failed write is logged and counted, and tried again one interval later.
        """
        if not cluster_id:
            return
        now = self.clock()
        due = self._next_write.get(cluster_id)
        if due is not None and now < due:
            return
        # NB: taken before the write awaits, so Signals handled concurrently do not all write.
        self._next_write[cluster_id] = now + self.interval
        try:
            await self._write(cluster_id)
        except Exception as exc:  # the store's outage shows in the Signal's own transaction
            CLUSTER_WRITES.labels(result="error").inc()
            log.warning("cluster not recorded; next interval", cluster_id=cluster_id, error=str(exc))
            return
        CLUSTER_WRITES.labels(result="ok").inc()

    async def _write(self, cluster_id: str) -> None:
        method = self._method.get(cluster_id)
        if method is None:
            # NB: keep what a watcher recorded (the store's upsert always sets ``detected_by``).
            try:
                known = await self.store.get_cluster(cluster_id)
                method = str(getattr(known, "detected_by", "") or FROM_SIGNALS)
            except NotFound:
                method = FROM_SIGNALS
            self._method[cluster_id] = method
        watcher = self._watchers.get(cluster_id)
        health = (
            watcher_health(watcher, progress_timeout=self.progress_timeout, role=self.role)
            if watcher is not None
            else None
        )
        await self.store.upsert_cluster(cluster_id, detected_by=method, watcher_health=health)

    async def heartbeat(self) -> None:
        """Record every attached watcher's cluster (throttled like ``seen``)."""
        for cluster_id in list(self._watchers):
            await self.seen(cluster_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat until ``stop``: an attached watcher's health is kept current without Signals."""
        while not stop.is_set():
            await self.heartbeat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
