"""Past incidents for the knowledge tests: resolved, with the note a person left."""

from __future__ import annotations

from aetherius.store import IncidentUpsert, Store
from tests.store.helpers import unique


async def resolved_incident(
    store: Store,
    *,
    reason: str,
    root_cause: str,
    summary: str,
    note: str,
    namespace: str = "shop",
    workload: str = "api",
) -> int:
    """A critical incident on a Pod of Deployment ``workload``, resolved by alice with ``note``."""
    change = await store.upsert_incident(
        IncidentUpsert(
            cluster_id="prod",
            fingerprint=unique("fp"),
            namespace=namespace,
            object_kind="Pod",
            object_name=unique(workload),
            owner_kind="Deployment",
            owner_name=workload,
            reason=reason,
            root_cause=root_cause,
            summary=summary,
            severity="critical",
        )
    )
    assert change.incident is not None
    await store.resolve_incident(change.incident.id, by="alice", note=note)
    return change.incident.id
