"""Which backend reads which cluster: one process may serve one cluster, several, or a fleet.

- ``aetherius run`` on one cluster: one live backend that answers for whatever its Signals call
  the cluster (``ClusterReaders.single(backend, cluster_id=None)``), or only for the configured
  id;
- out-of-cluster mode: one live backend per kubeconfig/context, by cluster id (``local``);
- central mode: every other cluster is read through its edge agent (``remote``, a factory that
  makes the backend speaking to that cluster's agent).

A cluster nobody here can read is a ``NoReader`` with a sentence for the report; a backend that
can tell it is unreachable right now (an edge agent not connected) says so through
``unavailable()`` before a diagnosis starts, so the report says why nothing was read instead of
listing one failed read per object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aetherius.gateway.base import Backend, BackendError


class NoReader(BackendError):
    """No backend here reads this cluster (or it cannot be reached right now)."""


class ClusterReaders:
    def __init__(
        self,
        *,
        local: Mapping[str, Backend] | None = None,
        any_cluster: Backend | None = None,
        remote: Callable[[str], Backend] | None = None,
    ) -> None:
        self.local = dict(local or {})
        self.any_cluster = any_cluster
        self.remote = remote
        self._remote: dict[str, Backend] = {}

    @classmethod
    def single(cls, backend: Backend, *, cluster_id: str | None) -> ClusterReaders:
        """One backend: for ``cluster_id`` only, or (None) for whatever the Signals call it."""
        return cls(local={cluster_id: backend}) if cluster_id else cls(any_cluster=backend)

    def backend_for(self, cluster_id: str) -> Backend:
        backend = self.local.get(cluster_id)
        if backend is not None:
            return backend
        if self.any_cluster is not None:
            return self.any_cluster
        if self.remote is not None:
            backend = self._remote.get(cluster_id)
            if backend is None:
                backend = self._remote[cluster_id] = self.remote(cluster_id)
            return backend
        served = ", ".join(repr(c) for c in sorted(self.local)) or "no cluster"
        raise NoReader(f"no reader for cluster {cluster_id!r} here (this process reads {served})")

    async def unavailable(self, cluster_id: str) -> str | None:
        """Why ``cluster_id`` cannot be read right now, or None when it can be tried."""
        try:
            backend = self.backend_for(cluster_id)
        except NoReader as exc:
            return str(exc)
        check = getattr(backend, "unavailable", None)
        if check is None:
            return None
        problem = await check()
        return str(problem) if problem else None
