"""The Watcher as one role of ``aetherius run``: same Watcher, in-process bus, shared client.

It detects the cluster id the way ``aetherius watch`` does, starts the Watcher, and on ``stop``
flushes its queue into the bus (the orchestrator is still consuming then) and saves its cursor.
"""

from __future__ import annotations

import asyncio

from aetherius.bus import StatefulBus
from aetherius.config import Settings
from aetherius.kube import KubeClient
from aetherius.kube.cluster_id import ClusterIdError, detect_cluster_id
from aetherius.logs import get_logger
from aetherius.orchestrator.clusters import ClusterRegistry
from aetherius.watch.watcher import Watcher

log = get_logger(__name__)


class WatcherFailed(Exception):
    """The watcher could not start or stopped by itself; the message is for a person."""


async def run_watcher(
    settings: Settings,
    *,
    bus: StatefulBus,
    kube: KubeClient,
    stop: asyncio.Event,
    clusters: ClusterRegistry | None = None,
    named: tuple[str, str] | None = None,
) -> None:
    """Watch until ``stop``; ``clusters`` learns the cluster id's detection and the watcher's health.

    ``named`` is ``(cluster_id, method)`` when the cluster was already named (out-of-cluster
    mode names every cluster before starting, to refuse two with the same id).
    """
    if named is not None:
        cluster_id, method = named
    else:
        try:
            cluster_id, method = await detect_cluster_id(kube, configured=settings.cluster_id)
        except ClusterIdError as exc:
            raise WatcherFailed(f"cannot name the cluster: {exc}") from None
    watcher = Watcher(client=kube, bus=bus, settings=settings, cluster_id=cluster_id, detected_by=method)
    await watcher.start()
    log.info("watcher started", cluster_id=cluster_id, cluster_id_method=method)
    if clusters is not None:
        clusters.attach_watcher(cluster_id, method=method, watcher=watcher)
    waiter = asyncio.create_task(watcher.wait())
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        failed = waiter.done() and not stop.is_set()
        waiter.cancel()
        stopper.cancel()
        flushed = await watcher.stop(flush_timeout=10.0)
        if clusters is not None:
            clusters.detach_watcher(cluster_id)
        if not flushed:
            log.warning("watcher queue not fully flushed at stop")
    if failed:
        raise WatcherFailed("the watcher stopped by itself (see the log above)")
