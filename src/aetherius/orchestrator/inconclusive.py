"""Inconclusive diagnoses tried again on the re-check, a bounded number of times.

A report whose root cause is ``Unknown`` often only came too early (the crash's logs did not exist
yet, the scheduler had not spoken). The resolver's periodic sweep hands each such open incident
here; attempt ``k`` (1…``attempts``) is due ``interval × (2^k − 1)`` after this replica first saw
it inconclusive (1, 3, 7 intervals: growing spacing), and each attempt is a cooldown claim of its
own, so across replicas it runs once. A retry adds a report version only when the findings
changed. This is the backstop for an incident that goes quiet; one that keeps failing is also
tried again on its next crash or restart (``Orchestrator.handle``), without waiting for the timer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import Counter

from aetherius.logs import get_logger
from aetherius.orchestrator.model import Incident, IncidentRepository, inconclusive, utcnow
from aetherius.orchestrator.service import Orchestrator, Outcome

log = get_logger(__name__)

INCONCLUSIVE_RETRIES = Counter(
    "aetherius_orchestrator_inconclusive_retries_total",
    "Re-diagnoses of incidents whose latest report is Unknown, by result",
    ["result"],  # diagnosed | unchanged | claimed_elsewhere | deferred | error; back_*: on a cluster's return
)
RETRY_ATTEMPTS = 3


class InconclusiveRetry:
    def __init__(
        self,
        orchestrator: Orchestrator,
        *,
        interval: timedelta,
        attempts: int = RETRY_ATTEMPTS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.orchestrator = orchestrator
        self.interval = interval
        self.attempts = attempts
        self.clock = clock
        # incident id -> (since when this replica has seen it inconclusive, attempts made)
        self._seen: dict[str, tuple[datetime, int]] = {}
        self._replica = uuid.uuid4().hex

    def due_attempt(self, incident: Incident) -> int:
        """The attempt due now (1…attempts), 0 when none is."""
        now = self.clock()
        since, made = self._seen.setdefault(incident.id, (now, 0))
        due = 0
        for k in range(made + 1, self.attempts + 1):
            if now - since >= self.interval * (2**k - 1):
                due = k
        return due

    async def __call__(self, incident: Incident) -> None:
        """One sweep's look at an open incident: retry it when inconclusive and an attempt is due."""
        if not inconclusive(incident):
            self._seen.pop(incident.id, None)
            return
        attempt = self.due_attempt(incident)
        if attempt == 0:
            return
        since, _ = self._seen[incident.id]
        # NB: the claim outlives the whole schedule, so a replica that starts late repeats nothing.
        ttl = (self.interval * 2 ** (self.attempts + 1)).total_seconds()
        key = f"{incident.fingerprint}:{incident.reopen_count}:inconclusive:{attempt}"
        try:
            handled = await self.orchestrator.retry_inconclusive(
                incident, claim_key=key, ttl=ttl, owner=f"recheck:{self._replica}:{incident.id}"
            )
        except Exception as exc:  # the sweep goes on; the attempt counts as made
            INCONCLUSIVE_RETRIES.labels(result="error").inc()
            log.warning("inconclusive re-diagnosis failed", incident=incident.id, error=str(exc))
            self._seen[incident.id] = (since, attempt)
            return
        if handled.outcome is Outcome.DEFERRED:
            INCONCLUSIVE_RETRIES.labels(result="deferred").inc()  # rate limited: the next sweep
            return
        self._seen[incident.id] = (since, attempt)
        result = {
            Outcome.DIAGNOSED: "diagnosed",
            Outcome.UNCHANGED: "unchanged",
        }.get(handled.outcome, "claimed_elsewhere")
        INCONCLUSIVE_RETRIES.labels(result=result).inc()
        log.info("inconclusive incident re-diagnosed", incident=incident.id, attempt=attempt, result=result)

    async def cluster_back(self, cluster_id: str, *, repository: IncidentRepository) -> int:
        """A cluster's agent connected (again): its inconclusive incidents are tried now, not at
        the next step of the schedule — most said "agent not connected". The number tried."""
        tried = 0
        stamp = int(self.clock().timestamp())
        for incident in await repository.open_incidents(cluster_id=cluster_id):
            if not inconclusive(incident):
                continue
            key = f"{incident.fingerprint}:{incident.reopen_count}:inconclusive:back:{stamp // 60}"
            handled = await self.orchestrator.retry_inconclusive(
                incident, claim_key=key, ttl=120.0, owner=f"back:{self._replica}:{incident.id}"
            )
            INCONCLUSIVE_RETRIES.labels(result=f"back_{handled.outcome.name.lower()}").inc()
            tried += 1
        if tried:
            log.info(
                "cluster back: inconclusive incidents re-diagnosed", cluster_id=cluster_id, incidents=tried
            )
        return tried

    def retain(self, incident_ids: set[str]) -> None:
        self._seen = {k: v for k, v in self._seen.items() if k in incident_ids}
