"""Clusters as the orchestrator sees them: which ones send Signals, how each was named, its watcher.

Every Signal names its cluster; the registry records it in the store (``upsert_cluster``) so the
dashboard and ``GET /api/v1/clusters`` list it with a recent ``last_seen``. Writes are throttled
per cluster and replica (at most one per ``interval``), never one per Signal.

A quiet cluster sends no Signals, so the watcher's health is recorded on a heartbeat as well:

- where the watcher runs in the same process (``aetherius run``/``demo``) it is attached, and
  the registry reads its health (and how the cluster id was detected) directly;
- a standalone watcher (``aetherius watch``) writes the same health to the bus's KV bucket every
  ``watcher.heartbeat_interval``; each orchestrator replica reads those reports
  (``heartbeats.HeartbeatReader``) and hands them to ``report``. Every replica writes the same
  health, so the writes are idempotent whichever replicas run.

A report older than ``STALE_INTERVALS`` of the watcher's own heartbeat interval is not trusted:
the watcher stopped, or cannot reach the bus, and nobody can tell which from here. The cluster is
then recorded once more with status ``unreachable`` (the last reported status kept as
``reported_status``, ``seconds_since_report`` its age then) and no more: ``last_seen`` stops
moving, so the dashboard shows the watcher as unreachable now and the cluster as stale later. The
age is measured against the watcher's wall clock (``reported_at``), so clocks must agree to well
within a few intervals — NTP's usual skew is far below that.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from prometheus_client import Counter

from aetherius.logs import get_logger
from aetherius.store import NotFound
from aetherius.watch.health import HealthReport, WatcherState, watcher_health

log = get_logger(__name__)

CLUSTER_WRITES = Counter(
    "aetherius_orchestrator_cluster_updates_total", "Cluster last-seen/health writes, by result", ["result"]
)
# How a cluster the orchestrator learns of only through its Signals is said to be detected.
FROM_SIGNALS = "signals"
DEFAULT_INTERVAL = 5.0
# A standalone watcher's report older than this many of its heartbeat intervals is not trusted.
STALE_INTERVALS = 3
UNREACHABLE = "unreachable"


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
        # Called when a cluster's reports turn fresh (its agent connected, or came back).
        self.on_back: Callable[[str], Awaitable[None]] | None = None
        self._fresh: set[str] = set()
        self._next_write: dict[str, float] = {}
        self._method: dict[str, str] = {}  # cluster id -> how it was detected, once known
        self._watchers: dict[str, WatcherState] = {}
        self._reported: dict[str, dict[str, Any]] = {}  # cluster id -> a standalone watcher's health
        self._unreachable: set[str] = set()

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
            else self._reported.get(cluster_id)
        )
        await self.store.upsert_cluster(cluster_id, detected_by=method, watcher_health=health)

    async def report(self, report: HealthReport, *, now: float | None = None) -> None:
        """A standalone watcher's health report, read from the bus: recorded like ``seen``.

        A fresh report is written (throttled); a stale one is written once as ``unreachable``
        unless the store already says so for that same report (another replica, or this one
        before a restart, wrote it), so ``last_seen`` stays at about when the reports stopped.
        Never raises.
        """
        cluster_id = report.cluster_id
        if cluster_id in self._watchers:
            return  # NB: the in-process watcher is read directly, and is fresher
        self._method[cluster_id] = report.detected_by
        health = report.health()
        age = max(0.0, (time.time() if now is None else now) - report.reported_at)
        if age <= STALE_INTERVALS * report.interval:
            self._reported[cluster_id] = health
            self._unreachable.discard(cluster_id)
            await self.seen(cluster_id)
            if cluster_id not in self._fresh:
                self._fresh.add(cluster_id)
                await self._back(cluster_id)
            return
        self._fresh.discard(cluster_id)
        if cluster_id in self._unreachable:
            return
        self._unreachable.add(cluster_id)
        health.update(status=UNREACHABLE, reported_status=report.status, seconds_since_report=round(age, 1))
        self._reported[cluster_id] = health
        if await self._recorded(cluster_id, health):
            return
        self._next_write.pop(cluster_id, None)
        await self.seen(cluster_id)

    async def _back(self, cluster_id: str) -> None:
        if self.on_back is None:
            return
        try:
            await self.on_back(cluster_id)
        except Exception as exc:  # the inconclusive retry's timer is the backstop
            log.warning("cluster back: retry not started", cluster_id=cluster_id, error=str(exc))

    async def _recorded(self, cluster_id: str, health: dict[str, Any]) -> bool:
        """Whether the store already holds ``health``'s status for the same report."""
        try:
            known = dict(getattr(await self.store.get_cluster(cluster_id), "watcher_health", {}) or {})
        except Exception:  # NotFound, or the store's outage: writing is the safe side
            return False
        return all(known.get(k) == health[k] for k in ("status", "reported_at"))

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
