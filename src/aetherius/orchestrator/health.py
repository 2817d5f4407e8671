"""The orchestrator's probes: ``/health/live`` and ``/health/ready`` beside ``/metrics``.

Ready means the replica can do its work now: the store answers, the bus is connected and the
cluster's API server answers (diagnoses read it live). Live means the consumer loop is running;
a slow dependency makes the replica unready, never restarted.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from aetherius.bus import StatefulBus
from aetherius.config import Settings
from aetherius.kube import KubeClient
from aetherius.ops.health import CheckResult, HealthServer, api_server_check, flag_check
from aetherius.ops.metrics import MetricsServer
from aetherius.store import Store, StoreError


def register_orchestrator_checks(
    health: HealthServer, *, store: Store, bus: StatefulBus, kube: KubeClient, alive: Callable[[], bool]
) -> None:
    async def store_reachable() -> CheckResult:
        try:
            await store.ping()
        except StoreError as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, "answered")

    health.add_readiness("store", store_reachable)
    health.add_readiness(
        "bus", flag_check(lambda: bus.connected, ok="connected", failing="not connected to the bus")
    )
    health.add_readiness("api_server", api_server_check(kube))
    health.add_liveness(
        "consumer", flag_check(alive, ok="consuming", failing="the consumer loop is not running")
    )


@contextlib.asynccontextmanager
async def probes(
    settings: Settings, *, store: Store, bus: StatefulBus, kube: KubeClient, alive: Callable[[], bool]
) -> AsyncIterator[tuple[HealthServer, MetricsServer]]:
    """Health on ``settings.health.port`` and metrics on ``settings.metrics.port`` while inside."""
    health = HealthServer(settings.health)
    register_orchestrator_checks(health, store=store, bus=bus, kube=kube, alive=alive)
    metrics = MetricsServer(settings.metrics)
    await health.start()
    try:
        await metrics.start()
        try:
            yield health, metrics
        finally:
            await metrics.stop()
    finally:
        await health.stop()
