"""Ended dashboard sessions: a logout is kept until the cookie it ends would expire anyway.

Session cookies are signed, not stored, so any replica can check one; logging out must still
end the session everywhere, so the ended ones are the store's to remember (pruned with the
other expired marks, ``RetentionOps.prune``).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from aetherius.store.base import StoreBase
from aetherius.store.models import EndedSessionRow


class SessionOps(StoreBase):
    async def end_session(self, session_id: str, *, ttl: float) -> None:
        """Refuse this session's cookie from now on (idempotent)."""
        table = EndedSessionRow.__table__
        statement = self.insert(table).values(
            session_id=session_id[:64], until=self.clock() + timedelta(seconds=max(ttl, 0.0))
        )
        async with self.sessions.begin() as session:
            await session.execute(statement.on_conflict_do_nothing(index_elements=["session_id"]))

    async def session_ended(self, session_id: str) -> bool:
        async with self.sessions() as session:
            found = await session.execute(
                select(EndedSessionRow.session_id).where(EndedSessionRow.session_id == session_id[:64])
            )
            return found.scalar_one_or_none() is not None
