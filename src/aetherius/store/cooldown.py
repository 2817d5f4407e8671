"""Cooldown marks: the orchestrator's fallback when Redis is not there or not answering.

One atomic statement decides, so two replicas asking at once cannot both win: the mark is taken
when there is none, when it has expired, or when the evidence changed since it was set.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_

from aetherius.store.base import StoreBase
from aetherius.store.models import CooldownRow


class CooldownOps(StoreBase):
    async def acquire_cooldown(self, key: str, *, ttl: float, evidence_hash: str = "") -> bool:
        """True when the caller may act now (and the mark is set for ``ttl`` seconds)."""
        now = self.clock()
        table = CooldownRow.__table__
        statement = self.insert(table).values(
            key=key, until=now + timedelta(seconds=ttl), evidence_hash=evidence_hash
        )
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"until": statement.excluded.until, "evidence_hash": statement.excluded.evidence_hash},
            where=or_(table.c.until <= now, table.c.evidence_hash != statement.excluded.evidence_hash),
        ).returning(table.c.key)
        async with self.sessions.begin() as session:
            return (await session.execute(statement)).scalar_one_or_none() is not None

    async def clear_cooldown(self, key: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(delete(CooldownRow).where(CooldownRow.key == key))
