"""What the orchestrator does with one Signal: group it, decide whether to diagnose, keep the report.

The order is what makes redelivery safe. The Signal and its incident are committed first (a
redelivery is recognised as a duplicate and changes nothing), then the diagnosis decision is
taken from the *stored* incident (its evidence digest against the evidence last diagnosed), so a
replica that died between the two steps leaves work the redelivery finishes: no report is lost,
none is written twice for the same evidence.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client import Counter, Histogram

from aetherius.config import OrchestratorSettings
from aetherius.logs import get_logger
from aetherius.orchestrator.cooldown import CooldownMarks
from aetherius.orchestrator.grouping import incident_key
from aetherius.orchestrator.model import Incident, IncidentRepository, ReportDraft, evidence_digest, utcnow
from aetherius.orchestrator.owners import SignalEnricher
from aetherius.orchestrator.ratelimit import DiagnosisRateLimiter
from aetherius.orchestrator.resolver import HealthClock
from aetherius.signals import Signal

log = get_logger(__name__)

DIAGNOSES = Counter("aetherius_orchestrator_diagnoses_total", "Diagnoses run, by result", ["result"])
DIAGNOSIS_SECONDS = Histogram(
    "aetherius_orchestrator_diagnosis_seconds",
    "Time to diagnose an incident and commit its report",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class Diagnoser(Protocol):
    async def diagnose(self, incident: Incident, *, diagnosis_id: str) -> ReportDraft:
        """Diagnose the incident's workload live, with ``incident.id`` in every audit row."""


class Outcome(enum.StrEnum):
    DIAGNOSED = "diagnosed"
    RECORDED = "recorded"  # stored; this evidence is diagnosed already (cooldown) or right now
    DUPLICATE = "duplicate"  # a redelivery of a Signal already fully handled
    RESOLVING = "resolving"
    DEFERRED = "deferred"  # rate limited: back to the bus for later


@dataclass(frozen=True, slots=True)
class Handled:
    outcome: Outcome
    incident_id: str | None = None
    retry_after: float = 0.0
    report_version: int = 0


class Orchestrator:
    def __init__(
        self,
        *,
        repository: IncidentRepository,
        diagnoser: Diagnoser,
        cooldown: CooldownMarks,
        limiter: DiagnosisRateLimiter,
        settings: OrchestratorSettings,
        health: HealthClock | None = None,
        enricher: SignalEnricher | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repository = repository
        self.health = health or HealthClock()
        self.diagnoser = diagnoser
        self.cooldown = cooldown
        self.limiter = limiter
        self.settings = settings
        self.clock = clock
        self.enricher = enricher

    async def handle(self, signal: Signal, *, redelivered: bool = False) -> Handled:
        """Handle one Signal; raises when the store or the diagnosis fails (the caller naks)."""
        if self.enricher is not None:
            signal = await self.enricher.complete(signal)
        key = incident_key(signal)
        now = self.clock()
        if signal.resolved:
            resolving = await self.repository.record_resolving(signal, key=key, now=now)
            if resolving is None:
                return Handled(Outcome.RESOLVING)
            self.health.mark(resolving.id, since=now)
            return Handled(Outcome.RESOLVING, incident_id=resolving.id)
        recorded = await self.repository.record_signal(signal, key=key, now=now)
        incident = recorded.incident
        if incident is None:
            return Handled(Outcome.DUPLICATE)
        self.health.clear(incident.id)
        digest = evidence_digest(incident, signal)
        cooldown = self.settings.cooldown
        # NB: the claim names the evidence per reopening: the same evidence is diagnosed once per
        # cooldown, whichever replica and however many Signals carry it.
        claimed = await self.cooldown.claim(
            f"{incident.fingerprint}:{incident.reopen_count}:{digest}",
            owner=signal.msg_id,
            ttl=cooldown.total_seconds(),
        )
        maybe_ours = redelivered or recorded.duplicate
        if not claimed and not maybe_ours:
            return Handled(Outcome.RECORDED, incident_id=incident.id)
        if maybe_ours and await self.repository.report_exists(
            incident.id, digest=digest, since=now - cooldown
        ):
            # A redelivery whose work was committed before its ack was lost.
            return Handled(Outcome.DUPLICATE, incident_id=incident.id)
        # Here: the claim is ours, or this redelivered Signal may have taken it before its
        # replica died — finishing its diagnosis is what keeps a report from being lost.
        wait = await self.limiter.try_acquire(incident.cluster_id)
        if wait > 0:
            return Handled(Outcome.DEFERRED, incident_id=incident.id, retry_after=wait)
        version = await self._diagnose(incident, digest=digest)
        return Handled(Outcome.DIAGNOSED, incident_id=incident.id, report_version=version)

    async def _diagnose(self, incident: Incident, *, digest: str) -> int:
        diagnosis_id = str(uuid.uuid4())
        with DIAGNOSIS_SECONDS.time():
            try:
                report = await self.diagnoser.diagnose(incident, diagnosis_id=diagnosis_id)
            except Exception:
                DIAGNOSES.labels(result="error").inc()
                raise
            report.diagnosis_id = diagnosis_id
            version = await self.repository.save_report(
                incident_id=incident.id, digest=digest, report=report, now=self.clock()
            )
        DIAGNOSES.labels(result="ok").inc()
        log.info(
            "incident diagnosed",
            incident=incident.id,
            workload=f"{incident.workload.kind}/{incident.workload.namespace}/{incident.workload.name}",
            root_cause=report.root_cause,
            version=version,
        )
        return version
