"""The ``aetherius agent --mode node`` role: wire the kubelet, the kernel logs, the bus and the ops
servers around a ``NodeAgent``.

``NODE_NAME`` (the downward API's ``spec.nodeName``) names the node; ``NODE_IP`` (``status.hostIP``)
finds its kubelet when ``node_agent.kubelet_url`` is not set. SIGTERM/SIGINT: stop reading,
publish what is queued, exit 0.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from aetherius.agent.kernel import PatternError
from aetherius.agent.kubelet import KubeletClient
from aetherius.agent.node import NodeAgent
from aetherius.bus import BusUnavailable, StatefulBus, bus_for, connect_waiting
from aetherius.config import Settings
from aetherius.kube import KubeClient
from aetherius.kube.cluster_id import ClusterIdError, detect_cluster_id
from aetherius.kube.credentials import CredentialsError
from aetherius.logs import bind_context, get_logger
from aetherius.ops.health import HealthServer, flag_check
from aetherius.ops.metrics import MetricsServer
from aetherius.ops.serve import StartupError, stop_on_signals

__all__ = ["StartupError", "run_node_agent"]

log = get_logger(__name__)
_SERVICE_ACCOUNT_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"


def kubelet_url(settings: Settings, env: dict[str, str] | None = None) -> str:
    values = os.environ if env is None else env
    if settings.node_agent.kubelet_url:
        return settings.node_agent.kubelet_url
    host = values.get("NODE_IP", "")
    if not host:
        raise StartupError("no kubelet to read: set node_agent.kubelet_url, or NODE_IP (status.hostIP)")
    return f"https://{host}:10250"


def node_name(settings: Settings, env: dict[str, str] | None = None) -> str:
    name = settings.node_agent.node_name or (os.environ if env is None else env).get("NODE_NAME", "")
    if not name:
        raise StartupError(
            "which node? set NODE_NAME (the downward API's spec.nodeName) or node_agent.node_name"
        )
    return name


def _default_ca() -> str:
    """The ServiceAccount's CA, which signs kubelet serving certificates on most clusters."""
    return _SERVICE_ACCOUNT_CA if Path(_SERVICE_ACCOUNT_CA).is_file() else ""


def _boot_id(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip() or "boot"
    except OSError:
        return "boot"


def register_checks(health: HealthServer, *, agent: NodeAgent, bus: StatefulBus) -> None:
    interval = agent.settings.node_agent.poll_interval.total_seconds()
    health.add_liveness(
        "kernel_readers",
        flag_check(
            lambda: not agent.stalled_readers(),
            ok="kernel log readers making progress",
            failing=lambda: "; ".join(agent.stalled_readers()),
        ),
    )
    health.add_readiness(
        "kubelet",
        flag_check(
            lambda: (
                agent.last_summary is not None and time.monotonic() - agent.last_summary < 3 * interval + 5
            ),
            ok="kubelet summary read",
            failing=lambda: agent.kubelet_error or "no kubelet summary read yet",
        ),
    )
    health.add_readiness(
        "dependencies", flag_check(lambda: bus.connected, ok="bus connected", failing="bus not connected")
    )


async def run_node_agent(settings: Settings, *, ready_file: str | None = None) -> int:
    name = node_name(settings)
    url = kubelet_url(settings)
    na = settings.node_agent
    ca_file = na.kubelet_ca_file or _default_ca()
    if na.kubelet_insecure_skip_tls_verify:
        log.warning("the kubelet's certificate is not verified (node_agent.kubelet_insecure_skip_tls_verify)")
    try:
        kubelet = KubeletClient(
            base_url=url,
            token_file=na.kubelet_token_file,
            ca_file=ca_file,
            insecure=na.kubelet_insecure_skip_tls_verify,
            timeout=na.request_timeout.total_seconds(),
        )
    except (ValueError, OSError) as exc:
        raise StartupError(f"kubelet client: {exc}") from None
    try:
        client = await KubeClient.from_settings(settings.kube)
    except CredentialsError as exc:
        await kubelet.close()
        raise StartupError(str(exc)) from None
    with stop_on_signals() as stop:
        async with client:
            try:
                cluster_id, _ = await detect_cluster_id(client, configured=settings.cluster_id)
            except ClusterIdError as exc:
                await kubelet.close()
                raise StartupError(str(exc)) from None
            bind_context(cluster_id=cluster_id, node=name)
            try:
                bus = bus_for(settings.message_bus, name="aetherius-node-agent")
                agent = NodeAgent(
                    settings=settings,
                    cluster_id=cluster_id,
                    node_name=name,
                    kubelet=kubelet,
                    bus=bus,
                    kube=client,
                    boot_id=_boot_id(na.boot_id_file),
                )
            except PatternError as exc:
                await kubelet.close()
                raise StartupError(f"kernel patterns: {exc}") from None
            except BusUnavailable as exc:
                await kubelet.close()
                raise StartupError(str(exc)) from None
            health = HealthServer(settings.health)
            register_checks(health, agent=agent, bus=bus)
            metrics = MetricsServer(settings.metrics)
            await health.start()
            await metrics.start()
            try:
                if not await connect_waiting(bus, stop=stop):
                    return 0
                log.info(
                    "node agent started",
                    node=name,
                    kubelet=url,
                    kernel_logs=na.kernel_logs,
                    health_port=health.port,
                )
                if ready_file:
                    Path(ready_file).write_text(f"{health.port} {metrics.port}\n", encoding="utf-8")  # noqa: ASYNC240
                await agent.run(stop)
            finally:
                await metrics.stop()
                await health.stop()
                await bus.close()
                await kubelet.close()
    return 0
