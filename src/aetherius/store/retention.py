"""Retention: old signals and audit rows pruned in small batches.

Small batches keep each transaction short, so pruning a month of history never holds locks the
orchestrator is waiting for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, select

from aetherius.store.base import StoreBase
from aetherius.store.models import (
    AuditRow,
    CooldownRow,
    DeliveryRow,
    EndedSessionRow,
    ReasoningAnswerRow,
    ReasoningSpendRow,
    SignalRow,
)
from aetherius.store.records import PruneResult

PRUNED = Counter("aetherius_store_pruned_rows_total", "Rows removed by retention", ["table"])


class RetentionOps(StoreBase):
    async def prune(self, *, older_than: timedelta, batch_size: int = 1000) -> PruneResult:
        """Delete signals, audit rows and sent deliveries older than ``older_than``; expired marks."""
        now = self.clock()
        cutoff = now - older_than
        signals = await self._prune(SignalRow, SignalRow.received_at < cutoff, batch_size)
        audit = await self._prune(AuditRow, AuditRow.at < cutoff, batch_size)
        sent = await self._prune(
            DeliveryRow, (DeliveryRow.status != "pending") & (DeliveryRow.created_at < cutoff), batch_size
        )
        async with self.sessions.begin() as session:
            result = await session.execute(delete(CooldownRow).where(CooldownRow.until < now))
            cooldowns = int(getattr(result, "rowcount", 0) or 0)
            result = await session.execute(delete(EndedSessionRow).where(EndedSessionRow.until < now))
            ended = int(getattr(result, "rowcount", 0) or 0)
            # The Reasoning Service's expired cached answers, and token spend of days gone by.
            result = await session.execute(
                delete(ReasoningAnswerRow).where(ReasoningAnswerRow.expires_at < now)
            )
            answers = int(getattr(result, "rowcount", 0) or 0)
            yesterday = (now - timedelta(days=1)).date().isoformat()
            await session.execute(delete(ReasoningSpendRow).where(ReasoningSpendRow.day < yesterday))
        return PruneResult(
            signals=signals,
            audit=audit,
            cooldowns=cooldowns,
            extra={"deliveries": sent, "ended_sessions": ended, "reasoning_answers": answers},
        )

    async def _prune(self, model: Any, condition: Any, batch_size: int) -> int:
        total = 0
        while True:
            async with self.sessions.begin() as session:
                ids = select(model.id).where(condition).order_by(model.id).limit(batch_size)
                result = await session.execute(delete(model).where(model.id.in_(ids.scalar_subquery())))
                removed = int(getattr(result, "rowcount", 0) or 0)
            total += removed
            PRUNED.labels(model.__tablename__).inc(removed)
            if removed < batch_size:
                return total
