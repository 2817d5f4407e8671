"""On-demand diagnosis for the API: the engine run live through the read-only gateway.

Every read of a scan is audited to the store under the scan's id, like the orchestrator's reads.
"""

from __future__ import annotations

from typing import Any

import msgspec

from aetherius.api.deps import DiagnoseFn, UnknownCluster
from aetherius.diagnosis import diagnose, new_scan_id
from aetherius.diagnosis.engine import ClusterUnreadable
from aetherius.gateway import ExecutionGateway, LiveBackend, MemoryAuditSink
from aetherius.gateway.readers import ClusterReaders, NoReader
from aetherius.kube import KubeClient
from aetherius.orchestrator.diagnose import audit_rows
from aetherius.store import AuditEntry, Store


def readers_diagnose(readers: ClusterReaders, *, store: Store, default_cluster: str = "") -> DiagnoseFn:
    """A ``DiagnoseFn`` scanning one namespace of the cluster a request names, read through
    ``readers`` (one live cluster, several kubeconfigs, or member clusters' edge agents).

    With one cluster the request may leave it out. An unknown cluster (or none named among
    several) is ``UnknownCluster``: a scan of the wrong cluster would answer about a namespace
    nobody asked about. A member cluster whose agent is not connected is ``ClusterUnreadable``.
    """
    served = ", ".join(sorted(readers.local)) or default_cluster

    async def run(namespace: str, cluster_id: str | None) -> dict[str, Any]:
        if cluster_id is None:
            if readers.any_cluster is not None:
                cluster_id = default_cluster
            elif len(readers.local) == 1:
                cluster_id = next(iter(readers.local))
            else:
                raise UnknownCluster(f"name the cluster to diagnose: this Aetherius reads {served}")
        try:
            backend = readers.backend_for(cluster_id)
        except NoReader:
            raise UnknownCluster(f"no cluster {cluster_id!r} here: this Aetherius reads {served}") from None
        problem = await readers.unavailable(cluster_id)
        if problem is not None:
            raise ClusterUnreadable(problem)
        scan_id = new_scan_id()
        audit = MemoryAuditSink()
        try:
            result = await diagnose(
                ExecutionGateway(backend, audit=audit), namespace=namespace, scan_id=scan_id
            )
        except ClusterUnreadable as exc:
            raise ClusterUnreadable(f"{exc} (scan {scan_id}: its reads are in the audit log)") from None
        finally:
            # NB: a scan that fails half-way has read all the same: its reads are kept.
            rows = audit_rows(audit.records, scan_id=scan_id, cluster_id=cluster_id or default_cluster)
            await store.record_audit([AuditEntry(**row) for row in rows])
        document: dict[str, Any] = msgspec.to_builtins(result)
        document["scan_id"] = scan_id
        return document

    return run


def live_diagnose(
    client: KubeClient, *, store: Store, cluster: str, secret_metadata: bool = False
) -> DiagnoseFn:
    """``readers_diagnose`` of the one cluster ``client`` talks to, whatever a request calls it.

    ``secret_metadata`` is ``kube.secret_metadata``: Secrets listed metadata-only, to check that a
    referenced Secret exists (off by default: it needs ``list secrets`` RBAC).
    """
    backend = LiveBackend(client, cluster=cluster, secret_metadata=secret_metadata)
    return readers_diagnose(
        ClusterReaders.single(backend, cluster_id=None), store=store, default_cluster=cluster
    )
