"""Investigate on our own when the rules' answer is ``Unknown`` (``reasoning.auto_on_unknown``).

Offered by the orchestrator after a report is stored; never awaited by it: a Signal consumer
does not wait on a model. At most ``max_pending`` starts are in flight per process (the rest are
dropped and counted; the next inconclusive report offers again), and the investigations
themselves run within the Reasoning Service's own concurrency bound. Once per incident and
evidence: a cooldown mark keyed by the incident and holding the findings' digest, taken in the
store, so that replicas agree; new findings take it again. The answer cache would make a repeat
cost nothing, but not add nothing: a repeat would still be a report version.
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import Counter

from aetherius.logs import get_logger
from aetherius.reasoning.service import Investigations, ReasoningUnavailable
from aetherius.store import Store, StoreError

__all__ = ["AUTO_INVESTIGATIONS", "AutoInvestigations"]

log = get_logger(__name__)

AUTO_INVESTIGATIONS = Counter(
    "aetherius_reasoning_auto_investigations_total",
    "Investigations the orchestrator offered on an Unknown root cause, by what became of them "
    "(started, refused: the daily budget, duplicate: this evidence was investigated, dropped: too "
    "many starts in flight, failed)",
    ["result"],
)
_WEEK = 7 * 86400.0


class AutoInvestigations:
    """The orchestrator's side of the auto-trigger: ``offer`` returns at once."""

    def __init__(
        self, *, investigations: Investigations, store: Store, max_pending: int = 8, remember: float = _WEEK
    ) -> None:
        self.investigations = investigations
        self.store = store
        self.max_pending = max_pending
        self.remember = remember  # seconds an incident's evidence counts as investigated
        self._pending: set[asyncio.Task[None]] = set()

    def offer(self, incident_id: str, evidence: str) -> None:
        """An inconclusive report was stored for ``incident_id``; ``evidence`` digests its findings."""
        if not incident_id.isdigit():
            return
        if len(self._pending) >= self.max_pending:
            AUTO_INVESTIGATIONS.labels("dropped").inc()
            return
        task = asyncio.create_task(
            self._start(int(incident_id), evidence), name=f"auto-investigate-{incident_id}"
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _start(self, incident_id: int, evidence: str) -> None:
        try:
            key = f"reasoning:auto:{incident_id}"
            if not await self.store.acquire_cooldown(key, ttl=self.remember, evidence_hash=evidence):
                AUTO_INVESTIGATIONS.labels("duplicate").inc()
                return
            record = await self.investigations.start(incident_id, requested_by="aetherius", trigger="auto")
        except (ReasoningUnavailable, StoreError) as exc:
            AUTO_INVESTIGATIONS.labels("failed").inc()
            log.warning("auto investigation not started", incident=incident_id, error=str(exc))
            return
        result = "refused" if record.ending == "daily-budget" else "started"
        AUTO_INVESTIGATIONS.labels(result).inc()
        log.info("auto investigation", incident=incident_id, investigation=record.id, result=result)

    async def drain(self) -> None:
        """Wait for the starts in flight (tests; a clean stop)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        await self.investigations.close()
