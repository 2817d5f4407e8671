"""On-demand diagnosis for the API: the engine run live through the read-only gateway.

Every read of a scan is audited to the store under the scan's id, like the orchestrator's reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from aetherius.api.deps import DiagnoseFn, UnknownCluster
from aetherius.diagnosis import diagnose, new_scan_id
from aetherius.diagnosis.engine import ClusterUnreadable
from aetherius.gateway import MemoryAuditSink, live_gateway
from aetherius.kube import KubeClient
from aetherius.orchestrator.diagnose import audit_rows
from aetherius.store import AuditEntry, Store


def live_diagnose(
    client: KubeClient, *, store: Store, cluster: str, secret_metadata: bool = False
) -> DiagnoseFn:
    """A ``DiagnoseFn`` scanning one namespace of the cluster ``client`` talks to.

    ``secret_metadata`` is ``kube.secret_metadata``: Secrets listed metadata-only, to check that a
    referenced Secret exists (off by default: it needs ``list secrets`` RBAC).
    """

    async def run(namespace: str, cluster_id: str | None) -> dict[str, Any]:
        scan_id = new_scan_id()
        audit = MemoryAuditSink()
        try:
            result = await diagnose(
                live_gateway(client, cluster=cluster, audit=audit, secret_metadata=secret_metadata),
                namespace=namespace,
                scan_id=scan_id,
            )
        except ClusterUnreadable as exc:
            raise ClusterUnreadable(f"{exc} (scan {scan_id}: its reads are in the audit log)") from None
        finally:
            # NB: a scan that fails half-way has read all the same: its reads are kept.
            rows = audit_rows(audit.records, scan_id=scan_id, cluster_id=cluster_id or cluster)
            await store.record_audit([AuditEntry(**row) for row in rows])
        document: dict[str, Any] = msgspec.to_builtins(result)
        document["scan_id"] = scan_id
        return document

    return run


def clusters_diagnose(
    clients: Mapping[str, KubeClient], *, store: Store, secret_metadata: bool = False
) -> DiagnoseFn:
    """A ``DiagnoseFn`` over several clusters (out-of-cluster mode), each read by its own client.

    The request names the cluster; with one cluster it may leave it out. An unknown cluster (or
    none named among several) is ``UnknownCluster``: a scan of the wrong cluster would answer
    about a namespace nobody asked about.
    """
    scanners = {
        cluster_id: live_diagnose(client, store=store, cluster=cluster_id, secret_metadata=secret_metadata)
        for cluster_id, client in clients.items()
    }
    served = ", ".join(sorted(scanners))

    async def run(namespace: str, cluster_id: str | None) -> dict[str, Any]:
        if cluster_id is None and len(scanners) == 1:
            cluster_id = next(iter(scanners))
        if cluster_id is None:
            raise UnknownCluster(f"name the cluster to diagnose: this Aetherius reads {served}")
        scanner = scanners.get(cluster_id)
        if scanner is None:
            raise UnknownCluster(f"no cluster {cluster_id!r} here: this Aetherius reads {served}")
        return await scanner(namespace, cluster_id)

    return run
