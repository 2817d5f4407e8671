"""The Execution Gateway: read-only, redacted, audited access to a cluster or a snapshot file.

Diagnosis reads the cluster only through ``ExecutionGateway``. Build one with ``snapshot_gateway``
(a file) or ``live_gateway`` (a ``KubeClient``); both apply the same redaction and audit.
External callers read whole, redacted objects (``list_objects``/``get_object``/``events_for``);
diagnosis reads the cheaper analysis view (``scan_objects``, see ``gateway.decode``) and scrubs
what it emits.
"""

from __future__ import annotations

from pathlib import Path

from aetherius.gateway.audit import AuditRecord, AuditSink, MemoryAuditSink
from aetherius.gateway.base import Backend, BackendError, ExecutionGateway
from aetherius.gateway.kinds import KINDS, KindInfo, UnknownKind
from aetherius.gateway.live import LiveBackend, SecretsNotRead
from aetherius.gateway.redact import MASK, redact_object, scrub_text
from aetherius.gateway.snapshot import (
    SnapshotBackend,
    SnapshotError,
    SnapshotState,
    load_snapshot,
    parse_snapshot,
)
from aetherius.kube import KubeClient

__all__ = [
    "KINDS",
    "MASK",
    "AuditRecord",
    "AuditSink",
    "Backend",
    "BackendError",
    "ExecutionGateway",
    "KindInfo",
    "LiveBackend",
    "MemoryAuditSink",
    "SecretsNotRead",
    "SnapshotBackend",
    "SnapshotError",
    "SnapshotState",
    "UnknownKind",
    "live_gateway",
    "load_snapshot",
    "parse_snapshot",
    "redact_object",
    "scrub_text",
    "snapshot_gateway",
]


def snapshot_gateway(source: Path | SnapshotState, *, audit: AuditSink | None = None) -> ExecutionGateway:
    state = load_snapshot(source) if isinstance(source, Path) else source
    return ExecutionGateway(SnapshotBackend(state), audit=audit)


def live_gateway(
    client: KubeClient,
    *,
    cluster: str = "",
    audit: AuditSink | None = None,
    secret_metadata: bool = False,
) -> ExecutionGateway:
    """``secret_metadata``: list Secrets metadata-only (needs ``list secrets`` RBAC; off by default)."""
    return ExecutionGateway(
        LiveBackend(client, cluster=cluster, secret_metadata=secret_metadata), audit=audit
    )
