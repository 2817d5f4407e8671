"""API tokens: shown once, stored as a SHA-256 hash, with a role and a revocation time.

The secret is 32 random bytes, so a plain SHA-256 is enough (no password stretching needed) and
a lookup is one indexed equality. ``last_used_at`` is written at most once a minute per token so
that a busy API does not turn every request into a write.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from aetherius.store.base import StoreBase, to_record
from aetherius.store.engine import InvalidInput, NotFound
from aetherius.store.models import TokenRow
from aetherius.store.records import ROLES, ApiToken, CreatedToken, Role

TOKEN_PREFIX = "aeth_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenOps(StoreBase):
    async def create_token(self, *, name: str, role: Role) -> CreatedToken:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if not name.strip():
            raise InvalidInput("a token needs a name")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = TokenRow(
            name=name.strip(),
            role=role,
            token_hash=hash_token(secret),
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            created_at=self.clock(),
        )
        async with self.sessions.begin() as session:
            session.add(row)
            await session.flush()
            return CreatedToken(token=to_record(ApiToken, row), secret=secret)

    async def verify_token(self, secret: str) -> ApiToken | None:
        """The live token this secret belongs to, or None (unknown or revoked)."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        now = self.clock()
        async with self.sessions() as session:
            query = select(TokenRow).where(TokenRow.token_hash == hash_token(secret))
            row = (await session.execute(query)).scalar_one_or_none()
            if row is None or row.revoked_at is not None:
                return None
            token = to_record(ApiToken, row)
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            async with self.sessions.begin() as session:
                await session.execute(
                    update(TokenRow).where(TokenRow.id == token.id).values(last_used_at=now)
                )
        return token

    async def list_tokens(self, *, include_revoked: bool = True) -> list[ApiToken]:
        query = select(TokenRow).order_by(TokenRow.id)
        if not include_revoked:
            query = query.where(TokenRow.revoked_at.is_(None))
        async with self.sessions() as session:
            return [to_record(ApiToken, row) for row in (await session.execute(query)).scalars()]

    async def revoke_token(self, token_id: int) -> ApiToken:
        """Revoke (idempotent): the token stops working at once; its row stays for the record."""
        async with self.sessions.begin() as session:
            row = await session.get(TokenRow, token_id, with_for_update=True)
            if row is None:
                raise NotFound(f"token {token_id} does not exist")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
            return to_record(ApiToken, row)

    async def count_tokens(self, *, role: Role | None = None) -> int:
        """Live tokens (the API prints a first-run admin token when there is none)."""
        query = select(TokenRow.id).where(TokenRow.revoked_at.is_(None))
        if role is not None:
            query = query.where(TokenRow.role == role)
        async with self.sessions() as session:
            return len(list((await session.execute(query)).scalars()))
