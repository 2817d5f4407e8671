"""What the orchestrator does with one Signal: group it, decide whether to diagnose, keep the report.

The order is what makes redelivery safe. The Signal and its incident are committed first (a
redelivery is recognised as a duplicate and changes nothing), then the diagnosis decision is
taken from the *stored* incident (its evidence digest against the evidence last diagnosed), so a
replica that died between the two steps leaves work the redelivery finishes: no report is lost,
none is written twice for the same evidence.

``record`` takes Signals in (consecutive failure Signals in one write) and says per Signal what
is left: nothing, or a ``Pending`` diagnosis that ``diagnose`` runs; the consumer runs it beside
the Signal's lane. ``handle`` does both, for one Signal.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client import Counter, Histogram

from aetherius.config import OrchestratorSettings
from aetherius.logs import get_logger
from aetherius.orchestrator.clusters import ClusterRegistry
from aetherius.orchestrator.cooldown import CooldownMarks
from aetherius.orchestrator.grouping import IncidentKey, incident_key
from aetherius.orchestrator.model import (
    Incident,
    IncidentRepository,
    ReportDraft,
    SignalOutcome,
    evidence_digest,
    findings_digest,
    inconclusive,
    utcnow,
)
from aetherius.orchestrator.owners import SignalEnricher
from aetherius.orchestrator.ratelimit import DiagnosisRateLimiter
from aetherius.orchestrator.resolver import HealthClock
from aetherius.signals import Signal

log = get_logger(__name__)

REDIAGNOSE_LABEL = "aetherius.io/rediagnose"
# A cooldown mark another replica holds is believed for this long before Redis is asked again.
_HELD_BELIEVED = 30.0
_HELD_REMEMBERED = 20_000

DIAGNOSES = Counter(
    "aetherius_orchestrator_diagnoses_total",
    "Diagnoses by result (shared: a Signal served by a diagnosis of its incident already under way)",
    ["result"],
)
SIGNAL_RETRIES = Counter(
    "aetherius_orchestrator_inconclusive_signal_retries_total",
    "Re-diagnoses of an Unknown incident on its next crash or restart Signal, by result",
    ["result"],  # diagnosed | unchanged | rate_limited | error
)
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
    UNCHANGED = "unchanged"  # re-diagnosed; the findings are the latest report's: no version added


@dataclass(frozen=True, slots=True)
class Handled:
    outcome: Outcome
    incident_id: str | None = None
    retry_after: float = 0.0
    report_version: int = 0


@dataclass(frozen=True, slots=True)
class Pending:
    """A diagnosis a Signal owes (its evidence is claimed): ``Orchestrator.diagnose`` runs it."""

    incident: Incident
    digest: str
    claim_key: str = ""  # the cooldown mark the Signal holds for it ("": none, a person's request)
    # When its Signal was stored; a diagnosis of the incident that began since then sees what the
    # Signal reports, and serves it too (None: a person asked for this diagnosis, run it).
    recorded_at: datetime | None = None


class _Running:
    """A diagnosis under way on this replica, for the Signals that may share it."""

    __slots__ = ("done", "started", "version")

    def __init__(self, started: datetime) -> None:
        self.started = started
        self.done = asyncio.Event()
        self.version: int | None = None  # its report's version once stored; None: it failed


Step = Handled | Pending


def batchable(signal: Signal) -> bool:
    """Whether a Signal is an observation of a failure: stored together with its neighbours.

    Resolving Signals and re-diagnosis requests are taken one at a time, in their place.
    """
    return not signal.resolved and not (signal.source == "api" and REDIAGNOSE_LABEL in signal.labels)


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
        clusters: ClusterRegistry | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_unknown: Callable[[str, str], None] | None = None,
    ) -> None:
        self.repository = repository
        # ``(incident id, findings digest)``: told of every stored report whose root cause is
        # Unknown (reasoning.auto_on_unknown); must return at once (see auto_investigate.py).
        self.on_unknown = on_unknown
        self.health = health or HealthClock()
        self.diagnoser = diagnoser
        self.cooldown = cooldown
        self.limiter = limiter
        self.settings = settings
        self.clock = clock
        self.enricher = enricher
        self.clusters = clusters
        # cooldown key -> (clock) timestamp until which it is known to be held (by anyone)
        self._held: dict[str, float] = {}
        self._running: dict[str, _Running] = {}  # incident id -> its newest diagnosis under way

    async def handle(self, signal: Signal, *, redelivered: bool = False) -> Handled:
        """Handle one Signal; raises when the store or the diagnosis fails (the caller naks)."""
        (step,) = await self.record([(signal, redelivered)])
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Pending):
            return await self.diagnose(step)
        return step

    async def record(self, items: Sequence[tuple[Signal, bool]]) -> list[Step | Exception]:
        """Take in Signals (each with whether it is a redelivery), in order; per Signal its step.

        Consecutive failure Signals are stored together (one write for all of them); a Signal
        that needs a diagnosis gets a ``Pending`` for ``diagnose``, so whoever handles it can let
        the Signals behind it go on meanwhile. An error is the step of its Signal only.
        """
        steps: list[Step | Exception] = []
        run: list[tuple[Signal, bool]] = []
        for signal, redelivered in items:
            if batchable(signal):
                run.append((signal, redelivered))
                continue
            steps.extend(await self._record_failures(run))
            run = []
            try:
                steps.append(await self._record_other(signal, redelivered=redelivered))
            except Exception as exc:
                steps.append(exc)
        steps.extend(await self._record_failures(run))
        return steps

    async def diagnose(self, pending: Pending) -> Handled:
        """Run the diagnosis a Signal owes (unless the rate limit defers it) and keep the report."""
        incident = pending.incident
        shared = await self.share(pending)
        if shared is not None:
            return shared
        wait = await self.limiter.try_acquire(incident.cluster_id)
        if wait > 0:
            return Handled(Outcome.DEFERRED, incident_id=incident.id, retry_after=wait)
        running = self._running[incident.id] = _Running(self.clock())
        try:
            version, _ = await self._diagnose(incident, digest=pending.digest)
            running.version = version
        finally:
            running.done.set()
            if self._running.get(incident.id) is running:
                del self._running[incident.id]
        return Handled(Outcome.DIAGNOSED, incident_id=incident.id, report_version=version)

    async def share(self, pending: Pending) -> Handled | None:
        """The outcome of a diagnosis under way that serves this Signal too, if there is one.

        A new workload's first Signals (its pod's state, then its BackOff Event) carry different
        evidence, arrive together, and would each read the cluster for a diagnosis: a diagnosis
        that began after this Signal was stored reads a cluster that already shows what the
        Signal reports, so its report is this Signal's. One that began before may have missed it.
        """
        running = self._running.get(pending.incident.id)
        if running is None or pending.recorded_at is None or running.started < pending.recorded_at:
            return None
        await running.done.wait()
        if running.version is None:
            return None  # that diagnosis failed: this Signal's own is tried
        DIAGNOSES.labels(result="shared").inc()
        return Handled(Outcome.RECORDED, incident_id=pending.incident.id, report_version=running.version)

    async def _prepare(self, signal: Signal) -> Signal:
        if self.clusters is not None:
            await self.clusters.seen(signal.cluster_id)
        if self.enricher is not None:
            signal = await self.enricher.complete(signal)
        return signal

    async def _record_other(self, signal: Signal, *, redelivered: bool) -> Step:
        if signal.source == "api" and REDIAGNOSE_LABEL in signal.labels:
            return await self._rediagnose(signal, redelivered=redelivered)
        signal = await self._prepare(signal)
        return await self._resolving(signal, key=incident_key(signal), now=self.clock())

    async def _record_failures(self, run: Sequence[tuple[Signal, bool]]) -> list[Step | Exception]:
        if not run:
            return []
        prepared = [(await self._prepare(signal), redelivered) for signal, redelivered in run]
        keyed = [(signal, incident_key(signal)) for signal, _ in prepared]
        now = self.clock()
        outcomes = await self.repository.record_signals(keyed, now=now)
        steps: list[Step | Exception] = []
        for (signal, redelivered), outcome in zip(prepared, outcomes, strict=True):
            if isinstance(outcome, Exception):
                steps.append(outcome)
                continue
            try:
                steps.append(await self._decide(signal, outcome, redelivered=redelivered, now=now))
            except Exception as exc:
                steps.append(exc)
        return steps

    async def _decide(
        self, signal: Signal, recorded: SignalOutcome, *, redelivered: bool, now: datetime
    ) -> Step:
        """After the Signal is stored: whether its evidence is to be diagnosed, and by whom."""
        incident = recorded.incident
        if incident is None:
            return Handled(Outcome.DUPLICATE)
        self.health.clear(incident.id)
        digest = evidence_digest(incident, signal)
        cooldown = self.settings.cooldown
        ttl = cooldown.total_seconds()
        # NB: the claim names the evidence per reopening: the same evidence is diagnosed once per
        # cooldown, whichever replica and however many Signals carry it.
        claim_key = f"{incident.fingerprint}:{incident.reopen_count}:{digest}"
        maybe_ours = redelivered or recorded.duplicate
        if not maybe_ours and self._known_held(claim_key):
            return await self._diagnosed_already(incident, signal, ttl=ttl)
        claimed = await self.cooldown.claim(claim_key, owner=signal.msg_id, ttl=ttl)
        self._remember_held(claim_key, ttl if claimed else min(ttl, _HELD_BELIEVED))
        if not claimed and not maybe_ours:
            return await self._diagnosed_already(incident, signal, ttl=ttl)
        if maybe_ours and await self.repository.report_exists(
            incident.id, digest=digest, since=now - cooldown
        ):
            # A redelivery whose work was committed before its ack was lost.
            return Handled(Outcome.DUPLICATE, incident_id=incident.id)
        # Here: the claim is ours, or this redelivered Signal may have taken it before its
        # replica died — finishing its diagnosis is what keeps a report from being lost.
        return Pending(incident, digest=digest, claim_key=claim_key, recorded_at=now)

    async def release(self, pending: Pending, *, owner: str) -> None:
        """The diagnosis a Signal owed did not happen (failed, or handed back): free its claim."""
        if pending.claim_key:
            await self.cooldown.release(pending.claim_key, owner=owner)
            self._held.pop(pending.claim_key, None)

    async def _diagnosed_already(self, incident: Incident, signal: Signal, *, ttl: float) -> Handled:
        """This evidence was diagnosed; an inconclusive report gets another look on a new crash.

        A report is Unknown most often because it came too early: between two crashes of a young
        crash loop, before the dead instance's log was there. A pod Signal is a new state of the
        workload (a crash, a restart, numbered by the restart count), so it re-diagnoses such an
        incident once per occurrence, whichever replica gets it, adding a version only when the
        findings changed. An Event's repeat is not new evidence (see ``evidence_digest``), and an
        incident that goes quiet is left to the resolver's re-check. The Signal is stored either
        way: a retry that fails or is rate limited is counted, never a reason to redeliver it.
        """
        recorded = Handled(Outcome.RECORDED, incident_id=incident.id)
        if signal.source != "pod" or not inconclusive(incident):
            return recorded
        key = f"{incident.fingerprint}:{incident.reopen_count}:signal:{signal.occurrence}"
        if self._known_held(key):
            return recorded
        # NB: claimed before a diagnosis token is taken: the pods of a Deployment crash together,
        # and only the one Signal of each occurrence that wins the claim should spend the budget.
        claimed = await self.cooldown.claim(key, owner=signal.msg_id, ttl=ttl)
        self._remember_held(key, ttl if claimed else min(ttl, _HELD_BELIEVED))
        if not claimed:
            return recorded  # another Signal of this occurrence made the attempt
        if await self.limiter.try_acquire(incident.cluster_id) > 0:
            SIGNAL_RETRIES.labels(result="rate_limited").inc()  # the next occurrence tries again
            return recorded
        try:
            handled = await self._diagnose_if_changed(incident, claim_key=key)
        except Exception as exc:
            SIGNAL_RETRIES.labels(result="error").inc()
            log.warning("inconclusive re-diagnosis failed", incident=incident.id, error=str(exc))
            return recorded
        SIGNAL_RETRIES.labels(result=handled.outcome.value).inc()
        return handled

    def _known_held(self, key: str) -> bool:
        """Whether this replica already knows the cooldown mark is held: no round trip to ask.

        NB: a mark this replica took is believed for its whole ttl, one another replica holds for
        ``_HELD_BELIEVED`` seconds at most (its expiry is not known here), so the next diagnosis
        after a cooldown is late by that much at worst. A redelivery always asks (see handle).
        """
        until = self._held.get(key)
        return until is not None and until > self.clock().timestamp()

    def _remember_held(self, key: str, ttl: float) -> None:
        now = self.clock().timestamp()
        self._held[key] = now + ttl
        if len(self._held) > _HELD_REMEMBERED:
            self._held = {k: v for k, v in self._held.items() if v > now}

    async def _resolving(self, signal: Signal, *, key: IncidentKey, now: datetime) -> Handled:
        """A resolving Signal starts the healthy clock of the open incident(s) of its workload.

        It never opens an incident. The workload's incident of the same failure class is found by
        fingerprint; a resolving Signal whose reason names no failure class ("Ready") finds the
        workload's open incidents of any class.
        """
        resolving = await self.repository.record_resolving(signal, key=key, now=now)
        found = [resolving] if resolving is not None else []
        if not found:
            found = [
                i
                for i in await self.repository.open_incidents(cluster_id=signal.cluster_id)
                if (i.workload.kind, i.workload.namespace, i.workload.name)
                == (key.workload.kind, key.workload.namespace, key.workload.name)
            ]
        for incident in found:
            self.health.mark(incident.id, since=now)
        return Handled(Outcome.RESOLVING, incident_id=found[0].id if found else None)

    async def _rediagnose(self, signal: Signal, *, redelivered: bool) -> Step:
        """A person asked (through the API) for a fresh diagnosis: now, whatever the cooldown.

        The report's evidence key is the request's own (``rediagnose:<msg id>``), so a redelivered
        request whose report was committed adds no second version.
        """
        incident_id = signal.labels[REDIAGNOSE_LABEL]
        incident = await self.repository.get_incident(incident_id)
        if incident is None:
            log.warning("re-diagnosis requested for an unknown incident", incident=incident_id)
            return Handled(Outcome.RECORDED)
        digest = f"rediagnose:{signal.msg_id}"
        now = self.clock()
        if redelivered and await self.repository.report_exists(
            incident.id, digest=digest, since=now - self.settings.cooldown
        ):
            return Handled(Outcome.DUPLICATE, incident_id=incident.id)
        return Pending(incident, digest=digest)

    async def retry_inconclusive(
        self, incident: Incident, *, claim_key: str, ttl: float, owner: str
    ) -> Handled:
        """Diagnose an incident whose latest report is Unknown again (the resolver's re-check).

        ``claim_key`` names the attempt, so one replica makes it. A version is added only when the
        findings differ from the latest report's: an empty cluster re-diagnosed stays one report.
        """
        wait = await self.limiter.try_acquire(incident.cluster_id)
        if wait > 0:
            return Handled(Outcome.DEFERRED, incident_id=incident.id, retry_after=wait)
        # NB: ``owner`` is the replica's own: a mark's owner may claim it again (redelivery).
        if not await self.cooldown.claim(claim_key, owner=owner, ttl=ttl):
            return Handled(Outcome.RECORDED, incident_id=incident.id)  # another replica's attempt
        return await self._diagnose_if_changed(incident, claim_key=claim_key)

    async def _diagnose_if_changed(self, incident: Incident, *, claim_key: str) -> Handled:
        """A retry of an inconclusive diagnosis, ``claim_key`` its claimed attempt."""
        version, _ = await self._diagnose(incident, digest=f"recheck:{claim_key}", only_if_changed=True)
        if version == 0:
            return Handled(Outcome.UNCHANGED, incident_id=incident.id)
        return Handled(Outcome.DIAGNOSED, incident_id=incident.id, report_version=version)

    async def _diagnose(
        self, incident: Incident, *, digest: str, only_if_changed: bool = False
    ) -> tuple[int, str]:
        """Run the diagnosis and store its report; version 0: unchanged findings, nothing stored."""
        diagnosis_id = str(uuid.uuid4())
        with DIAGNOSIS_SECONDS.time():
            try:
                report = await self.diagnoser.diagnose(incident, diagnosis_id=diagnosis_id)
            except Exception:
                DIAGNOSES.labels(result="error").inc()
                raise
            report.diagnosis_id = diagnosis_id
            if only_if_changed and findings_digest(report.findings, summary=report.summary) == (
                await self.repository.latest_findings_digest(incident.id)
            ):
                DIAGNOSES.labels(result="unchanged").inc()
                return 0, report.root_cause
            version = await self.repository.save_report(
                incident_id=incident.id, digest=digest, report=report, now=self.clock()
            )
        DIAGNOSES.labels(result="ok").inc()
        if self.on_unknown is not None and report.root_cause in ("", "Unknown"):
            self.on_unknown(incident.id, findings_digest(report.findings))
        log.info(
            "incident diagnosed",
            incident=incident.id,
            workload=f"{incident.workload.kind}/{incident.workload.namespace}/{incident.workload.name}",
            root_cause=report.root_cause,
            version=version,
        )
        return version, report.root_cause
