"""The ``aetherius watch`` role: wire the client, the bus, the Watcher and the ops servers.

SIGTERM/SIGINT: stop reading, flush the queue, save the cursor, exit 0 (a graceful
shutdown). A failure to reach the cluster or detect its id at start is one clear line and exit 1;
an unreachable bus is waited for, with the probes served (readiness says "bus not connected"),
since the watcher can do nothing else.
"""

from __future__ import annotations

from aetherius.bus import BusUnavailable, StatefulBus, bus_for, connect_waiting
from aetherius.config import Settings
from aetherius.kube import KubeClient
from aetherius.kube.cluster_id import ClusterIdError, detect_cluster_id
from aetherius.kube.credentials import CredentialsError
from aetherius.logs import bind_context, get_logger
from aetherius.ops.health import HealthServer, api_server_check, flag_check, self_pod_check
from aetherius.ops.metrics import MetricsServer
from aetherius.ops.serve import StartupError, serve, stop_on_signals
from aetherius.watch.watcher import Watcher

log = get_logger(__name__)


def register_watcher_checks(
    health: HealthServer, *, watcher: Watcher, bus: StatefulBus, bus_name: str = "bus"
) -> None:
    """The probes of a role that runs a Watcher (the watcher, the edge agent): ready once it can
    read the cluster and reach ``bus_name`` and its first list is done; alive while its watches
    make progress (a wedged watch restarts the pod instead of silently missing failures)."""
    timeout = watcher.settings.health.progress_timeout.total_seconds()
    health.add_readiness("api_server", api_server_check(watcher.client))
    health.add_readiness("self_pod", self_pod_check(watcher.client))
    health.add_readiness(
        "dependencies",
        flag_check(lambda: bus.connected, ok=f"{bus_name} connected", failing=f"{bus_name} not connected"),
    )
    health.add_readiness(
        "initial_list",
        flag_check(lambda: watcher.synced, ok="initial list done", failing="initial list not done yet"),
    )
    health.add_liveness(
        "watch_progress",
        flag_check(
            lambda: watcher.seconds_since_progress() < timeout,
            ok="watch making progress",
            failing=lambda: f"no watch progress for {watcher.seconds_since_progress():.0f}s",
        ),
    )


async def run_watch(settings: Settings, *, ready_file: str | None = None) -> int:
    try:
        client = await KubeClient.from_settings(settings.kube)
    except CredentialsError as exc:
        raise StartupError(str(exc)) from None
    with stop_on_signals() as stop:
        async with client:
            try:
                cluster_id, method = await detect_cluster_id(client, configured=settings.cluster_id)
            except ClusterIdError as exc:
                raise StartupError(str(exc)) from None
            bind_context(cluster_id=cluster_id)
            try:
                bus = bus_for(settings.message_bus, name="aetherius-watch")
            except BusUnavailable as exc:
                raise StartupError(str(exc)) from None
            watcher = Watcher(
                client=client, bus=bus, settings=settings, cluster_id=cluster_id, detected_by=method
            )
            health = HealthServer(settings.health)
            register_watcher_checks(health, watcher=watcher, bus=bus)
            try:
                failed = await serve(
                    watcher,
                    stop=stop,
                    health=health,
                    metrics=MetricsServer(settings.metrics),
                    announce="watcher started",
                    ready_file=ready_file,
                    before=lambda: connect_waiting(bus, stop=stop),
                    cluster_id=cluster_id,
                    cluster_id_method=method,
                    bus=settings.message_bus.url,
                )
            finally:
                await bus.close()
    return 1 if failed else 0
