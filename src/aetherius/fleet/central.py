"""Central's readers: its own cluster (when it watches one) locally, every other through its agent."""

from __future__ import annotations

from collections.abc import Mapping

from aetherius.config import Settings
from aetherius.fleet.remote import RemoteBackend, Requester
from aetherius.fleet.subjects import ClusterSubjects, InvalidClusterName
from aetherius.gateway.base import Backend
from aetherius.gateway.readers import ClusterReaders, NoReader


def central_readers(
    settings: Settings, *, transport: Requester, local: Mapping[str, Backend]
) -> ClusterReaders:
    """``ClusterReaders`` for central mode: ``local`` by id, then each member cluster's agent."""
    conf = settings.fleet

    def remote(cluster: str) -> Backend:
        try:
            subjects = ClusterSubjects.of(cluster, settings.message_bus)
        except InvalidClusterName as exc:
            raise NoReader(f"cluster {cluster[:100]!r} cannot have an edge agent: {exc}") from None
        return RemoteBackend(
            transport,
            subjects=subjects,
            timeout=conf.gateway_timeout.total_seconds(),
            ping_timeout=conf.ping_timeout.total_seconds(),
        )

    return ClusterReaders(local=local, remote=remote)
