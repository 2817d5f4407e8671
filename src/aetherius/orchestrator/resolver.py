"""Auto-resolve: an incident closes by itself once its objects have been healthy for a while.

Two things start the healthy clock: a resolving Signal (an alert resolved, a pod Ready again) or
the periodic re-check, which reads the workload's status for incidents that have gone quiet. Any
new failure Signal stops the clock (the store clears it while merging), and a failure after the
incident resolved reopens it. Every replica may sweep: resolving is idempotent in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import Counter

from aetherius.logs import get_logger
from aetherius.orchestrator.model import Incident, IncidentRepository, utcnow

log = get_logger(__name__)

RESOLVED = Counter("aetherius_orchestrator_resolved_total", "Incidents resolved automatically", ["by"])
RECHECKS = Counter(
    "aetherius_orchestrator_rechecks_total", "Workload health re-checks, by result", ["result"]
)


class HealthClock:
    """When each open incident was last seen healthy, in this replica.

    NB: kept in process, not in the store: a replica that dies forgets its clocks and the
    periodic re-check starts them again; a failure Signal handled by another replica stops a
    clock through the incident's ``last_seen``, which the store keeps.
    """

    def __init__(self) -> None:
        self._since: dict[str, datetime] = {}

    def mark(self, incident_id: str, *, since: datetime) -> None:
        self._since.setdefault(incident_id, since)

    def clear(self, incident_id: str) -> None:
        self._since.pop(incident_id, None)

    def since(self, incident: Incident) -> datetime | None:
        since = self._since.get(incident.id)
        if since is not None and incident.last_seen > since:
            self.clear(incident.id)  # it failed again after it looked healthy
            return None
        return since

    def retain(self, incident_ids: set[str]) -> None:
        self._since = {k: v for k, v in self._since.items() if k in incident_ids}


class HealthProbe(Protocol):
    async def healthy(self, incident: Incident) -> bool | None:
        """True when the incident's workload is healthy now, False when not, None when unknown."""


def _conditions(status: Mapping[str, Any]) -> dict[str, str]:
    return {str(c.get("type")): str(c.get("status")) for c in status.get("conditions") or []}


def workload_healthy(kind: str, obj: Mapping[str, Any]) -> bool | None:
    """Whether a workload object's status says it is serving as intended."""
    spec: Mapping[str, Any] = obj.get("spec") or {}
    status: Mapping[str, Any] = obj.get("status") or {}
    if kind == "Pod":
        if status.get("phase") == "Succeeded":
            return True
        statuses = [*(status.get("containerStatuses") or [])]
        return status.get("phase") == "Running" and bool(statuses) and all(s.get("ready") for s in statuses)
    if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        wanted = int(spec.get("replicas", 1))
        ready = int(status.get("readyReplicas") or 0)
        return ready >= wanted and not int(status.get("unavailableReplicas") or 0)
    if kind == "DaemonSet":
        return not int(status.get("numberUnavailable") or 0) and int(status.get("numberReady") or 0) >= int(
            status.get("desiredNumberScheduled") or 0
        )
    if kind == "Job":
        conditions = _conditions(status)
        if conditions.get("Failed") == "True":
            return False
        return conditions.get("Complete") == "True" or bool(status.get("succeeded"))
    if kind == "Node":
        return _conditions(status).get("Ready") == "True"
    return None


class Resolver:
    def __init__(
        self,
        *,
        repository: IncidentRepository,
        probe: HealthProbe | None,
        resolve_after: timedelta,
        recheck_interval: timedelta,
        health: HealthClock,
        retry: Callable[[Incident], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repository = repository
        self.probe = probe
        self.resolve_after = resolve_after
        self.recheck_interval = recheck_interval
        self.health = health
        self.retry = retry  # the inconclusive re-diagnosis (``InconclusiveRetry``), on every sweep
        self.clock = clock

    async def sweep(self) -> list[str]:
        """One pass over the open incidents; returns the ids it resolved."""
        resolved: list[str] = []
        open_ids: set[str] = set()
        for incident in await self.repository.open_incidents():
            open_ids.add(incident.id)
            if self.retry is not None:
                await self.retry(incident)  # never raises: its failures are its own to count
            now = self.clock()
            since = self.health.since(incident)
            if since is not None and now - since >= self.resolve_after:
                if await self.repository.resolve(incident.id, now=now):
                    RESOLVED.labels(by="healthy").inc()
                    log.info("incident resolved", incident=incident.id, healthy_since=since.isoformat())
                    resolved.append(incident.id)
                self.health.clear(incident.id)
                continue
            if self.probe is None or now - incident.last_seen < self.recheck_interval:
                continue
            try:
                healthy = await self.probe.healthy(incident)
            except Exception as exc:  # a re-check must never stop the sweep
                RECHECKS.labels(result="error").inc()
                log.warning("health re-check failed", incident=incident.id, error=str(exc))
                continue
            RECHECKS.labels(result={True: "healthy", False: "failing", None: "unknown"}[healthy]).inc()
            if healthy:
                self.health.mark(incident.id, since=now)
            elif healthy is False:
                self.health.clear(incident.id)
        self.health.retain(open_ids)
        retain = getattr(self.retry, "retain", None)
        if retain is not None:
            retain(open_ids)
        return resolved

    async def run(self, stop: asyncio.Event) -> None:
        interval = max(0.05, min(self.recheck_interval, self.resolve_after).total_seconds() / 2)
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:  # the store may be down for a while; try again next round
                log.warning("resolve sweep failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
