"""Prometheus metrics every role exports, and the ``/metrics`` server.

The metrics are module-level on the default registry, so any layer (kube client, bus, watcher)
counts into the same families and one scrape shows them all. Label values are bounded: reasons
come from Kubernetes' finite vocabulary, causes and filters from fixed lists in the code.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from aetherius.config import MetricsSettings

SIGNALS_DERIVED = Counter(
    "aetherius_signals_derived_total", "Signals derived from the watch streams", ["source", "reason"]
)
SIGNALS_PUBLISHED = Counter(
    "aetherius_signals_published_total", "Signals acknowledged by the bus", ["source", "reason"]
)
SIGNALS_FILTERED = Counter(
    "aetherius_signals_filtered_total",
    "Signals dropped on purpose by watcher.yaml filters",
    ["filter", "reason"],
)
SIGNALS_DEDUPLICATED = Counter(
    "aetherius_signals_deduplicated_total",
    "Signals not republished because the same occurrence was already published",
    ["where"],
)
SIGNALS_DROPPED = Counter(
    "aetherius_signals_dropped_total",
    "Signals lost on purpose (never expected to be non-zero: the watcher applies back-pressure)",
    ["reason"],
)
WATCH_RESTARTS = Counter(
    "aetherius_watch_restarts_total", "Watch connections re-opened, by cause", ["resource", "cause"]
)
WATCH_GAPS = Counter(
    "aetherius_watch_gaps_total", "Events watches that expired (410): Events of the gap may be missing"
)
WATCH_RELISTS = Counter("aetherius_watch_relists_total", "Full relists, by cause", ["resource", "cause"])
WATCHER_HEALTH_REPORTS = Counter(
    "aetherius_watcher_health_reports_total",
    "Heartbeats of the watcher's health written to the bus's KV bucket, by result",
    ["result"],
)
WATCH_EVENTS = Counter("aetherius_watch_events_total", "Watch events read", ["resource", "type"])
QUEUE_DEPTH = Gauge("aetherius_watch_queue_depth", "Signals waiting between decode and publish")
BACKPRESSURE_SECONDS = Counter(
    "aetherius_watch_backpressure_seconds_total", "Time the watch stopped reading because the queue was full"
)
PUBLISH_LATENCY = Histogram(
    "aetherius_bus_publish_seconds",
    "Time to publish one batch and receive every acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PUBLISH_FAILURES = Counter("aetherius_bus_publish_failures_total", "Batches the bus did not acknowledge")
BUS_DUPLICATES = Counter(
    "aetherius_bus_duplicates_total", "Publishes the bus recognised as duplicates by message id"
)
BUS_REDELIVERIES = Counter("aetherius_bus_redeliveries_total", "Deliveries that were not the first")
BUS_DEAD_LETTERED = Counter(
    "aetherius_bus_dead_lettered_total", "Signals moved to the dead-letter subject", ["cause"]
)


async def _metrics(_request: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class MetricsServer:
    """``/metrics`` on its own port (9090 by default), in the role's event loop."""

    def __init__(self, settings: MetricsSettings, *, host: str = "0.0.0.0") -> None:
        self.settings = settings
        self.host = host
        self.port = settings.port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if not self.settings.enabled:
            return
        app = web.Application()
        app.router.add_get(self.settings.path, _metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.settings.port)
        await site.start()
        self.port = _bound_port(self._runner, self.settings.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    """The real port (tests ask for port 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
