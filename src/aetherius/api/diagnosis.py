"""On-demand diagnosis for the API: the engine run live through the read-only gateway.

Every read of a scan is audited to the store under the scan's id, like the orchestrator's reads.
"""

from __future__ import annotations

from typing import Any

import msgspec

from aetherius.api.deps import DiagnoseFn
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
