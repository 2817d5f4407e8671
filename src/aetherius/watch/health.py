"""A watcher's health: computed once, here, and reported over the bus by a standalone watcher.

``watcher_health`` is the one definition of what the store keeps as a cluster's watcher health
(``status`` is what the dashboard shows). An in-process watcher (``aetherius run``) is read by
the orchestrator's ``ClusterRegistry`` directly; a standalone one (``aetherius watch``) has no
orchestrator beside it, so its ``HealthReporter`` writes the same health, with how the cluster id
was detected and when, to the key ``health.<cluster id>`` of the bus's KV bucket every
``watcher.heartbeat_interval``. Every orchestrator replica reads those keys (see
``aetherius.orchestrator.heartbeats``). The record is JSON, so ``nats kv get`` shows it as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec

from aetherius import __version__
from aetherius.bus.base import KeyValue
from aetherius.logs import get_logger
from aetherius.ops.metrics import WATCHER_HEALTH_REPORTS
from aetherius.watch.cursor import kv_token

log = get_logger(__name__)

HEALTH_PREFIX = "health"


class WatcherState(Protocol):
    """What health is read from a ``Watcher``."""

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
    health: dict[str, Any] = {
        "status": status,
        "initial_list_done": synced,
        "last_progress": (datetime.now(UTC) - timedelta(seconds=idle)).isoformat(),
        "seconds_since_progress": round(idle, 1),
        "reported_by": role,
    }
    # NB: optional on purpose: a watcher that cannot count what it holds says nothing, not 0.
    behind = getattr(watcher, "signals_behind", None)
    if callable(behind):
        health["signals_behind"] = int(behind())
    return health


class HealthReport(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """One heartbeat of a standalone watcher: its health, its cluster, and when it was sent.

    ``interval`` is the watcher's own heartbeat interval, so a reader judges the report's age
    against the pace it was promised, whatever the reader's own settings say.
    """

    cluster_id: str
    detected_by: str
    reported_at: float  # the watcher's wall clock, seconds since the epoch
    interval: float
    status: str
    initial_list_done: bool
    last_progress: str
    seconds_since_progress: float
    reported_by: str = "watcher"
    version: str = ""
    signals_behind: int | None = None  # Signals read and not yet on the bus, where known

    def health(self) -> dict[str, Any]:
        """The report as the store's ``watcher_health`` (its reporting metadata included)."""
        health: dict[str, Any] = {
            "status": self.status,
            "initial_list_done": self.initial_list_done,
            "last_progress": self.last_progress,
            "seconds_since_progress": self.seconds_since_progress,
            "reported_by": self.reported_by,
            "version": self.version,
            "reported_at": datetime.fromtimestamp(self.reported_at, UTC).isoformat(),
        }
        if self.signals_behind is not None:
            health["signals_behind"] = self.signals_behind
        return health


class MalformedReport(ValueError):
    """A health key's value is not a ``HealthReport``."""


def health_key(cluster_id: str) -> str:
    """The KV key of ``cluster_id``'s report (NATS keys allow ``[-/_=.a-zA-Z0-9]`` only)."""
    return f"{HEALTH_PREFIX}.{kv_token(cluster_id)}"


def encode_report(report: HealthReport) -> bytes:
    return msgspec.json.encode(report)


def decode_report(raw: bytes) -> HealthReport:
    try:
        report = msgspec.json.decode(raw, type=HealthReport)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedReport(str(exc)) from None
    if not report.cluster_id or report.interval <= 0:
        raise MalformedReport("empty cluster_id or non-positive interval")
    return report


class HealthReporter:
    """Write ``watcher``'s health to ``kv`` every ``interval`` seconds; a failed write only logs."""

    def __init__(
        self,
        kv: KeyValue,
        watcher: WatcherState,
        *,
        cluster_id: str,
        detected_by: str,
        interval: float,
        progress_timeout: float,
        reported_by: str = "watcher",
    ) -> None:
        self.kv = kv
        self.reported_by = reported_by
        self.watcher = watcher
        self.cluster_id = cluster_id
        self.detected_by = detected_by
        self.interval = interval
        self.progress_timeout = progress_timeout
        self.key = health_key(cluster_id)

    def report(self) -> HealthReport:
        health = watcher_health(self.watcher, progress_timeout=self.progress_timeout, role=self.reported_by)
        return HealthReport(
            cluster_id=self.cluster_id,
            detected_by=self.detected_by,
            reported_at=time.time(),
            interval=self.interval,
            version=__version__,
            **health,
        )

    async def send(self) -> bool:
        """One heartbeat; False (logged and counted) when the bus did not take it."""
        try:
            await self.kv.put(self.key, encode_report(self.report()))
        except Exception as exc:  # BusUnavailable, or anything else: a heartbeat is never fatal
            WATCHER_HEALTH_REPORTS.labels(result="error").inc()
            log.warning("watcher health not reported; next interval", error=str(exc))
            return False
        WATCHER_HEALTH_REPORTS.labels(result="ok").inc()
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.send()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
