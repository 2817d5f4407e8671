"""The orchestrator role as a process: its connections, and everything it runs beside the consumer.

``open_connections`` opens the store, the bus and the cluster client a role needs (each failure a
``StartError`` phrased for a person); ``OrchestratorProcess`` runs, until told to stop, the
consumer and resolver, the notification dispatcher, the retention pruner and the reader of the
standalone watchers' health reports, after mirroring the shipped and the user's runbooks into the
store. ``aetherius orchestrator`` and ``aetherius run``
both start it this way, so the one-process mode is the distributed mode with an in-process bus.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from aetherius.bus import BusUnavailable, StatefulBus, open_bus
from aetherius.config import ConfigError, Settings
from aetherius.fleet.central import central_readers
from aetherius.fleet.remote import Requester
from aetherius.gateway import Backend, LiveBackend
from aetherius.gateway.readers import ClusterReaders
from aetherius.knowledge import shipped_runbooks_dir, sync_runbooks
from aetherius.kube import KubeClient
from aetherius.logs import get_logger
from aetherius.orchestrator.auto_investigate import AutoInvestigations
from aetherius.orchestrator.clients import (
    ClusterClient,
    check_write_access,
    kube_label,
    open_cluster_clients,
)
from aetherius.orchestrator.clients import (
    StartError as StartError,  # re-exported: roles catch it from here
)
from aetherius.orchestrator.clients import open_kube as open_kube_client
from aetherius.orchestrator.clusters import ClusterRegistry
from aetherius.orchestrator.diagnose import EngineDiagnoser, GatewayHealthProbe
from aetherius.orchestrator.heartbeats import HeartbeatReader
from aetherius.orchestrator.owners import PodOwnerLookup
from aetherius.orchestrator.runtime import OrchestratorRole, build_orchestrator
from aetherius.orchestrator.storage import StoreCooldownMarks, StoreRepository
from aetherius.reasoning.setup import investigations_from_settings
from aetherius.reports import NotificationDispatcher
from aetherius.store import Store, StoreError
from aetherius.store.engine import redact

log = get_logger(__name__)

PRUNE_INTERVAL = 3600.0


@dataclass
class Connections:
    """What a role talks to. ``clusters`` is out-of-cluster mode's named clients (empty with one
    cluster); ``kube`` is then the first of them, for the probes' reachability check."""

    store: Store
    bus: StatefulBus
    kube: KubeClient
    clusters: list[ClusterClient] = field(default_factory=list)


async def open_kube(settings: Settings) -> KubeClient:
    return await open_kube_client(settings.kube)


async def open_store(settings: Settings) -> Store:
    try:
        return await Store.from_settings(settings)
    except StoreError as exc:
        raise StartError(
            f"cannot open the store {redact(settings.database.url or 'sqlite')}: {exc}"
        ) from None


@contextlib.asynccontextmanager
async def open_connections(settings: Settings, *, role: str) -> AsyncIterator[Connections]:
    """Store, bus and cluster client for one role, closed in reverse order on the way out."""
    store = await open_store(settings)
    try:
        try:
            bus = await open_bus(settings.message_bus, name=f"aetherius-{role}")
        except BusUnavailable as exc:
            raise StartError(f"cannot reach the message bus {settings.message_bus.url}: {exc}") from None
        if settings.clusters:
            clusters = await open_cluster_clients(settings)
            try:
                yield Connections(store=store, bus=bus, kube=clusters[0].kube, clusters=clusters)
            finally:
                for cluster in clusters:
                    await cluster.kube.close()
            return
        try:
            kube = await open_kube(settings)
            try:
                yield Connections(store=store, bus=bus, kube=kube)
            finally:
                await kube.close()
        finally:
            await bus.close()
    finally:
        await store.close()


def cluster_readers(
    settings: Settings, *, kube: KubeClient, clusters: Sequence[ClusterClient] = ()
) -> ClusterReaders:
    """One live backend per named cluster (out-of-cluster mode), else today's single backend."""
    secret_metadata = settings.kube.secret_metadata
    if clusters:
        return ClusterReaders(
            local={
                c.cluster_id: LiveBackend(c.kube, cluster=c.cluster_id, secret_metadata=secret_metadata)
                for c in clusters
            }
        )
    backend = LiveBackend(kube, cluster=settings.cluster_id or "", secret_metadata=secret_metadata)
    return ClusterReaders.single(backend, cluster_id=settings.cluster_id)


class OrchestratorProcess:
    """The orchestrator role over opened connections: consume, resolve, notify, prune."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        bus: StatefulBus,
        kube: KubeClient,
        redis_url: str | None = None,
        prune_interval: float = PRUNE_INTERVAL,
        role: str = "orchestrator",
        clusters: Sequence[ClusterClient] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        self.prune_interval = prune_interval
        conf = settings.orchestrator
        repository = StoreRepository(
            store, write_batch=conf.write_batch, write_transactions=conf.write_transactions
        )
        self.clusters = ClusterRegistry(
            store, progress_timeout=settings.health.progress_timeout.total_seconds(), role=role
        )
        self.heartbeats = HeartbeatReader(
            bus,
            self.clusters,
            bucket=settings.message_bus.kv_bucket,
            interval=settings.watcher.heartbeat_interval.total_seconds(),
        )
        readers = cluster_readers(settings, kube=kube, clusters=clusters)
        if settings.fleet.mode == "central":
            readers = self._central_readers(bus, local=readers.local)
        self.readers = readers  # also the API's, in one process
        self.auto: AutoInvestigations | None = None
        if settings.reasoning.enabled and settings.reasoning.auto_on_unknown:
            try:
                investigations = investigations_from_settings(settings, store=store, kube=kube)
            except ConfigError as exc:
                raise StartError(str(exc)) from None
            self.auto = AutoInvestigations(investigations=investigations, store=store)
        self.role: OrchestratorRole = build_orchestrator(
            settings,
            bus=bus,
            repository=repository,
            diagnoser=EngineDiagnoser(readers, repository=repository),
            probe=GatewayHealthProbe(readers, repository=repository),
            store_marks=StoreCooldownMarks(store),
            redis_url=redis_url,
            enricher=PodOwnerLookup(readers, repository=repository),
            clusters=self.clusters,
            on_unknown=self.auto.offer if self.auto is not None else None,
        )

    def _central_readers(self, bus: StatefulBus, *, local: dict[str, Backend]) -> ClusterReaders:
        if not isinstance(bus, Requester):
            raise StartError(
                "central mode reads member clusters through NATS: set message_bus.url to nats://"
            )
        return central_readers(self.settings, transport=bus, local=local)

    async def sync_knowledge(self) -> None:
        result = await sync_runbooks(
            self.store, shipped_dir=shipped_runbooks_dir(), user_dirs=self.settings.knowledge.runbook_dirs
        )
        log.info("runbooks synced", shipped=result.shipped, user=result.user, problems=len(result.problems))

    async def _sync_knowledge_retrying(self, *, attempts: int = 3) -> None:
        # NB: replicas starting together on an empty store race to insert the same runbooks (the
        # loser gets a unique violation); a second pass finds them there and only compares.
        for attempt in range(1, attempts + 1):
            try:
                await self.sync_knowledge()
                return
            except Exception as exc:  # StoreError, or the database's IntegrityError of the race
                if attempt == attempts:
                    log.warning("runbooks not synced; reports cite none until the next start", error=str(exc))
                    return
                await asyncio.sleep(0.2 * attempt)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: a failure of the side tasks is logged, the consumer goes on."""
        await self._sync_knowledge_retrying()
        side_stop = asyncio.Event()
        dispatcher = NotificationDispatcher(self.store, self.settings.notifications)
        side = [
            asyncio.create_task(dispatcher.run(side_stop), name="notifications"),
            asyncio.create_task(self._prune(side_stop), name="prune"),
            asyncio.create_task(self.clusters.run(side_stop), name="clusters"),
            asyncio.create_task(self.heartbeats.run(side_stop), name="watcher-health"),
        ]
        try:
            await self.role.run(stop)
        finally:
            side_stop.set()
            for result in await asyncio.gather(*side, return_exceptions=True):
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    log.error("orchestrator side task failed", error=repr(result))
            await dispatcher.close()
            if self.auto is not None:
                await self.auto.close()

    async def _prune(self, stop: asyncio.Event) -> None:
        retention = self.settings.database.retention
        while not stop.is_set():
            try:
                pruned = await self.store.prune(older_than=retention)
                log.info(
                    "store pruned", signals=pruned.signals, audit=pruned.audit, cooldowns=pruned.cooldowns
                )
            except StoreError as exc:
                log.warning("store prune failed; next round", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.prune_interval)


async def check_clusters_write_access(
    settings: Settings, conn: Connections, *, announce: Callable[[str], None] | None = None
) -> None:
    """One warning per cluster whose credentials could write (see ``clients.check_write_access``)."""
    if conn.clusters:
        for cluster in conn.clusters:
            await check_write_access(
                cluster.kube, label=f"cluster {cluster.cluster_id!r} ({cluster.label})", announce=announce
            )
    else:
        await check_write_access(conn.kube, label=kube_label(settings.kube), announce=announce)


async def serve_orchestrator(settings: Settings, *, duration: float | None = None) -> None:
    """``aetherius orchestrator``: the role with its probes and metrics, until SIGINT/SIGTERM."""
    from aetherius.orchestrator.health import probes
    from aetherius.orchestrator.runtime import run_until_stopped

    async with open_connections(settings, role="orchestrator") as conn:
        await check_clusters_write_access(settings, conn)
        process = OrchestratorProcess(
            settings, store=conn.store, bus=conn.bus, kube=conn.kube, clusters=conn.clusters
        )
        running = asyncio.Event()

        async def main(stop: asyncio.Event) -> None:
            running.set()
            try:
                await process.run(stop)
            finally:
                running.clear()

        try:
            serving = probes(settings, store=conn.store, bus=conn.bus, kube=conn.kube, alive=running.is_set)
            async with serving as (health, metrics):
                log.info("orchestrator probes serving", health_port=health.port, metrics_port=metrics.port)
                await run_until_stopped(main, duration=duration)
        except OSError as exc:
            raise StartError(
                f"cannot serve probes on port {settings.health.port} or metrics on port "
                f"{settings.metrics.port}: {exc}"
            ) from None
