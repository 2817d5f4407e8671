"""A cluster's status as people read it: connected, stale or unreachable.

The store keeps when a cluster was last seen and its watcher's health; this is the one place
that turns them into what ``GET /api/v1/clusters`` and the dashboard show:

- ``unreachable``: its standalone watcher stopped reporting (the orchestrator's registry
  recorded ``unreachable``, see ``aetherius.orchestrator.clusters``);
- ``stale``: nothing from it for over ``STALE_AFTER`` (no Signal, no heartbeat);
- ``connected``: otherwise.

``signals_behind`` is the watcher's own count of Signals read from the cluster and not yet on
the bus (its queue), where the watcher reports it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aetherius.api.schemas import ClusterOut

STALE_AFTER = timedelta(minutes=5)
ClusterStatus = Literal["connected", "stale", "unreachable"]


def cluster_status(cluster: Any, *, now: datetime | None = None) -> ClusterStatus:
    health = dict(getattr(cluster, "watcher_health", {}) or {})
    if str(health.get("status", "")).lower() == "unreachable":
        return "unreachable"
    last_seen: datetime | None = getattr(cluster, "last_seen", None)
    if last_seen is None:
        return "stale"
    if last_seen.tzinfo is None:
        last_seen = last_seen.replace(tzinfo=UTC)
    return "stale" if (now or datetime.now(UTC)) - last_seen > STALE_AFTER else "connected"


def _behind(health: dict[str, Any]) -> int | None:
    value = health.get("signals_behind")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def cluster_out(cluster: Any, *, now: datetime | None = None) -> ClusterOut:
    """``ClusterOut`` of a store row, with its status and what its watcher reports."""
    health = dict(getattr(cluster, "watcher_health", {}) or {})
    return ClusterOut.model_validate(cluster).model_copy(
        update={
            "status": cluster_status(cluster, now=now),
            "watcher_status": str(health.get("status", "")),
            "signals_behind": _behind(health),
        }
    )
