"""The ``aetherius agent --mode edge`` role: one member cluster's watcher and gateway, dialing out.

The agent connects to central NATS with its cluster's credential (the token of the Secret
``edge-agent-token``: ``<cluster>.<nkey seed>``), so which cluster it speaks for is decided by the
credential, never by what it says: its Signals carry that name, and the server lets it publish
and answer for that name alone. It opens no port but its own probes and metrics.

- The Watcher publishes the cluster's Signals to central; its cursor and dedup window live in
  central's KV bucket under the cluster's keys and advance only after central acknowledged.
  While central or the link is down, reading stops when the bounded queue is full
  (back-pressure); on reconnect the same message ids are re-published and deduplicated.
- The responder answers central's gateway reads for this cluster, redacted and audited here.
- The heartbeat (the watcher's health, version, Signals behind) goes to the cluster's KV key.

In leaf mode (``fleet.leaf_domain``) the endpoint is the member cluster's own leaf nats-server
(``aetherius.fleet.leaf``): the agent provisions the Signal stream and the KV bucket there, and its
cursors advance once that server acknowledged, so a cut link blocks nothing and loses nothing.

Connection loss is never fatal: nats-py reconnects forever, with capped and jittered backoff.
"""

from __future__ import annotations

import os

from aetherius.bus import connect_waiting
from aetherius.bus.nats import NatsBus, NatsIdentity
from aetherius.config import Settings
from aetherius.fleet.identity import InvalidToken, parse_token
from aetherius.fleet.responder import GatewayResponder
from aetherius.fleet.subjects import ClusterSubjects
from aetherius.gateway import LiveBackend
from aetherius.kube import KubeClient
from aetherius.kube.cluster_id import ClusterIdError, detect_cluster_id
from aetherius.kube.credentials import CredentialsError
from aetherius.logs import bind_context, get_logger
from aetherius.ops.health import HealthServer
from aetherius.ops.metrics import MetricsServer
from aetherius.ops.serve import StartupError, serve, stop_on_signals
from aetherius.watch.service import register_watcher_checks
from aetherius.watch.watcher import Watcher

log = get_logger(__name__)
LEAF_MSG_ID_PREFIX = "leaf"


def read_token(settings: Settings, env: dict[str, str] | None = None) -> str:
    conf = settings.fleet
    if conf.token_file is not None:
        try:
            return conf.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StartupError(f"fleet.token_file: cannot read {conf.token_file}: {exc.strerror}") from None
    token = (os.environ if env is None else env).get(conf.token_env, "").strip()
    if not token:
        raise StartupError(
            f"no credential: set {conf.token_env} (the Secret edge-agent-token, key token) "
            "or fleet.token_file; `aetherius cluster add NAME` on the central side makes one"
        )
    return token


def agent_credential(token: str) -> tuple[str, str]:
    """``(cluster, nkey seed)`` of the agent's token, or one clear ``StartupError``."""
    try:
        return parse_token(token)
    except InvalidToken as exc:
        raise StartupError(f"the agent token is unusable: {exc}") from None


def edge_bus(settings: Settings, *, cluster: str, seed: str) -> NatsBus:
    """The agent's bus as this cluster's NATS user, reconnecting forever.

    Direct mode: central's server, no provisioning (the JetStream API is central's alone).
    Leaf mode: the member's own leaf server, whose stream and bucket the agent provisions.
    """
    fleet = settings.fleet
    bus_settings = settings.message_bus.model_copy(
        update={"url": fleet.central_endpoint or settings.message_bus.url, "max_reconnect_attempts": -1}
    )
    subjects = ClusterSubjects.of(cluster, bus_settings)
    return NatsBus(
        bus_settings,
        name=f"aetherius-edge-{cluster}",
        identity=NatsIdentity(seed=seed, inbox_prefix=subjects.inbox_prefix),
        provision=bool(fleet.leaf_domain),
        max_age=fleet.leaf_max_age.total_seconds() if fleet.leaf_domain else 0.0,
        # NB: central's stream deduplicates sourced messages too, and nats-server 2.9 retries a
        # source at each duplicate (seconds each): a cluster moved to leaf mode re-sends what it
        # sent directly (it relists, its cursors were central's), so its ids must not be those
        # central saw (the store keeps each Signal once all the same).
        msg_id_prefix=f"{LEAF_MSG_ID_PREFIX}." if fleet.leaf_domain else "",
    )


class EdgeAgent:
    """The watcher and the responder of one member cluster over one central connection."""

    def __init__(self, settings: Settings, *, client: KubeClient, bus: NatsBus, cluster: str) -> None:
        self.settings = settings
        self.client = client
        self.bus = bus
        self.cluster = cluster
        self.subjects = ClusterSubjects.of(cluster, settings.message_bus)
        self.watcher = Watcher(
            client=client,
            bus=bus,
            settings=settings,
            cluster_id=cluster,
            detected_by="credential",
            role="edge-agent",
        )
        self.responder: GatewayResponder | None = None

    async def start(self) -> None:
        nc = self.bus.nc
        assert nc is not None, "connect the bus first"
        backend = LiveBackend(
            self.client, cluster=self.cluster, secret_metadata=self.settings.kube.secret_metadata
        )
        self.responder = GatewayResponder(
            nc, backend, subjects=self.subjects, concurrency=self.settings.fleet.gateway_concurrency
        )
        await self.responder.start()
        await self.watcher.start()

    async def wait(self) -> None:
        """Until the watcher ends by itself (it failed for good)."""
        await self.watcher.wait()

    async def stop(self) -> bool:
        flushed = await self.watcher.stop(flush_timeout=10.0)
        if self.responder is not None:
            await self.responder.stop()
        return flushed


async def run_edge_agent(settings: Settings, *, ready_file: str | None = None) -> int:
    cluster, seed = agent_credential(read_token(settings))
    if settings.cluster_id and settings.cluster_id != cluster:
        log.warning(
            "CLUSTER_ID is not the credential's cluster; the credential decides",
            configured=settings.cluster_id,
            cluster=cluster,
        )
    bind_context(cluster_id=cluster)
    try:
        client = await KubeClient.from_settings(settings.kube)
    except CredentialsError as exc:
        raise StartupError(str(exc)) from None
    with stop_on_signals() as stop:
        async with client:
            try:
                detected, method = await detect_cluster_id(client, configured=None)
                if detected != cluster:
                    log.info(
                        "this cluster is known to central by its credential",
                        cluster=cluster,
                        detected=detected,
                        method=method,
                    )
            except ClusterIdError as exc:
                log.info("cluster id not detected; the credential names it", cluster=cluster, error=str(exc))
            bus = edge_bus(settings, cluster=cluster, seed=seed)
            agent = EdgeAgent(settings, client=client, bus=bus, cluster=cluster)
            health = HealthServer(settings.health)
            register_watcher_checks(
                health,
                watcher=agent.watcher,
                bus=bus,
                bus_name="leaf" if settings.fleet.leaf_domain else "central",
            )
            try:
                failed = await serve(
                    agent,
                    stop=stop,
                    health=health,
                    metrics=MetricsServer(settings.metrics),
                    announce="edge agent started",
                    ready_file=ready_file,
                    before=lambda: connect_waiting(bus, stop=stop),
                    cluster_id=cluster,
                    central=settings.fleet.central_endpoint or settings.message_bus.url,
                    leaf_domain=settings.fleet.leaf_domain or None,
                )
            finally:
                await bus.close()
    return 1 if failed else 0
