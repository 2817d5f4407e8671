"""API tokens as the store keeps them (hashed), seen through the ``TokenAuthority`` protocol.

Verified tokens are remembered for a few seconds so a busy dashboard or script does not cost a
store query per request; revoking through this API forgets at once, and a token revoked by
another process (or the CLI) stops working within ``CACHE_SECONDS``. The same holds for a
session logged out on another replica.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from aetherius.api.auth import Principal, Role
from aetherius.store import Store

CACHE_SECONDS = 5.0
_MAX_CACHED = 10_000


def _principal(token: Any) -> Principal:
    role: Role = token.role
    return Principal(token_id=str(token.id), name=token.name, role=role)


class StoreTokenAuthority:
    """Checks bearer secrets and session token ids against the store's ``api_tokens``."""

    def __init__(
        self,
        store: Store,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._by_secret: dict[str, tuple[float, Principal | None]] = {}
        self._by_id: tuple[float, dict[str, Principal]] | None = None
        self._ended: dict[str, float] = {}  # session id -> when the store last said "not ended"
        self._ended_here: set[str] = set()

    def forget(self) -> None:
        """Drop everything remembered (after a revocation)."""
        self._by_secret.clear()
        self._by_id = None

    async def authenticate(self, secret: str) -> Principal | None:
        if not secret or len(secret) > 256:
            return None
        key = hashlib.sha256(secret.encode()).hexdigest()
        now = self.clock()
        cached = self._by_secret.get(key)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        token = await self.store.verify_token(secret)
        principal = None if token is None else _principal(token)
        if len(self._by_secret) >= _MAX_CACHED:
            self._by_secret.clear()
        self._by_secret[key] = (now, principal)
        return principal

    async def session_ended(self, session_id: str) -> bool:
        if session_id in self._ended_here:
            return True
        now = self.clock()
        checked = self._ended.get(session_id)
        if checked is not None and now - checked < self.cache_seconds:
            return False
        if await self.store.session_ended(session_id):
            self._ended_here.add(session_id)
            return True
        if len(self._ended) >= _MAX_CACHED:
            self._ended.clear()
        self._ended[session_id] = now
        return False

    async def end_session(self, session_id: str, *, ttl: float) -> None:
        await self.store.end_session(session_id, ttl=ttl)
        if len(self._ended_here) >= _MAX_CACHED:
            self._ended_here.clear()  # NB: the store still knows; this is only a shortcut
        self._ended_here.add(session_id)
        self._ended.pop(session_id, None)

    async def lookup(self, token_id: str) -> Principal | None:
        now = self.clock()
        if self._by_id is None or now - self._by_id[0] >= self.cache_seconds:
            live = await self.store.list_tokens(include_revoked=False)
            self._by_id = (now, {str(t.id): _principal(t) for t in live})
        return self._by_id[1].get(token_id)


async def ensure_first_admin(store: Store) -> str | None:
    """Create the first admin token when the store has none; return its secret (else None).

    NB: the caller prints the secret once on stdout; it must never reach a log line.
    """
    if await store.count_tokens():
        return None
    created = await store.create_token(name="first-admin", role="admin")
    return created.secret
