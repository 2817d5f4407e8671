"""Standalone watchers' health reports, read from the bus's KV bucket into the ``ClusterRegistry``.

``aetherius watch`` writes ``health.<cluster id>`` every ``watcher.heartbeat_interval`` (see
``aetherius.watch.health``); every orchestrator replica polls those keys at the same pace and
hands each report to the registry, which records it (or, once it is stale, ``unreachable``).
A poll reads the current values only (a KV watch read to its end marker), so a replica that
starts late sees every cluster's last report at once and keeps no subscription open between
polls. A value that is not a report is skipped, counted and logged once per value: whatever
wrote it, the other clusters are still recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from prometheus_client import Counter

from aetherius.bus.base import KeyValue, StatefulBus
from aetherius.logs import get_logger
from aetherius.orchestrator.clusters import ClusterRegistry
from aetherius.watch.health import HEALTH_PREFIX, MalformedReport, decode_report

log = get_logger(__name__)

HEALTH_READS = Counter(
    "aetherius_orchestrator_watcher_reports_total",
    "Watcher health reports read from the bus, by result (ok, malformed, error: the poll failed)",
    ["result"],
)


class HeartbeatReader:
    def __init__(
        self,
        bus: StatefulBus,
        registry: ClusterRegistry,
        *,
        bucket: str,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.registry = registry
        self.bucket = bucket
        self.interval = interval
        self.clock = clock
        self._kv: KeyValue | None = None
        self._warned: dict[str, bytes] = {}  # key -> the malformed value already logged

    async def poll(self) -> int:
        """Read every report once and record it; the number of reports recorded."""
        if self._kv is None:
            self._kv = await self.bus.key_value(self.bucket)
        recorded = 0
        for key, raw in sorted((await self._kv.items(HEALTH_PREFIX)).items()):
            try:
                report = decode_report(raw)
            except MalformedReport as exc:
                HEALTH_READS.labels(result="malformed").inc()
                if self._warned.get(key) != raw:
                    self._warned[key] = raw
                    log.warning("watcher health report unreadable; skipped", key=key, error=str(exc))
                continue
            self._warned.pop(key, None)
            HEALTH_READS.labels(result="ok").inc()
            await self.registry.report(report, now=self.clock())
            recorded += 1
        return recorded

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``interval`` until ``stop``; a failed poll is logged and tried again."""
        while not stop.is_set():
            try:
                await self.poll()
            except Exception as exc:  # BusUnavailable mostly: the next poll may succeed
                HEALTH_READS.labels(result="error").inc()
                log.warning("watcher health reports not read; next interval", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
