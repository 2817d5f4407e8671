"""API tokens as the store keeps them (hashed), seen through the ``TokenAuthority`` protocol."""

from __future__ import annotations

from typing import Any

from aetherius.api.auth import Principal, Role


def _principal(token: Any) -> Principal:
    role: Role = token.role
    return Principal(token_id=str(token.id), name=token.name, role=role)


class StoreTokenAuthority:
    """Checks bearer secrets and session token ids against the store's ``api_tokens``."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def authenticate(self, secret: str) -> Principal | None:
        if not secret or len(secret) > 256:
            return None
        token = await self.store.verify_token(secret)
        return None if token is None else _principal(token)

    async def lookup(self, token_id: str) -> Principal | None:
        try:
            ident = int(token_id)
        except ValueError:
            return None
        token = await self.store.get_token(ident)
        if token is None or token.revoked_at is not None:
            return None
        return _principal(token)


async def ensure_first_admin(store: Any) -> str | None:
    """Create the first admin token when the store has none; return its secret (else None).

    NB: the caller prints the secret once on stdout; it must never reach a log line.
    """
    if await store.list_tokens():
        return None
    created = await store.create_token(name="first-admin", role="admin")
    return str(created.secret)
