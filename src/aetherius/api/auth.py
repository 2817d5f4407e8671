"""Who is calling, and may they: bearer API tokens, browser sessions, roles, CSRF.

Roles are ordered ``viewer < operator < admin``; each route names the least role it needs.
Scripts send ``Authorization: Bearer <token>``. The dashboard trades a token for a session once
(login form) and then carries an HttpOnly, SameSite=Strict cookie holding a *signed* session
payload (session id, token id, signed time), so any replica can check it; the token is looked up
again on every request so revoking it ends its sessions too, and a session logged out is
recorded in the store so its cookie is refused everywhere.
State-changing requests made with a session must carry the session's CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from fastapi import Request
from itsdangerous import BadData, URLSafeTimedSerializer

from aetherius.api.limits import retry_after_header
from aetherius.api.problems import Problem
from aetherius.ratelimit import RateLimiter

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
SESSION_COOKIE = "aetherius_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: Role
    via: Literal["bearer", "session"] = "bearer"
    session_id: str = ""

    def has(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class TokenAuthority(Protocol):
    """Where tokens live (the store); the API never sees a token's hash or keeps its plaintext."""

    async def authenticate(self, secret: str) -> Principal | None:
        """The principal of a presented bearer token, or None when unknown or revoked."""

    async def lookup(self, token_id: str) -> Principal | None:
        """The principal of a token id still valid (for sessions), or None."""

    def forget(self) -> None:
        """Drop any remembered verification (called after a token is revoked)."""

    async def session_ended(self, session_id: str) -> bool:
        """Whether this session was logged out (its cookie is then refused)."""

    async def end_session(self, session_id: str, *, ttl: float) -> None:
        """Log a session out, on every replica."""


class SessionSigner:
    """Signs and checks session cookies (itsdangerous) and derives each session's CSRF token."""

    def __init__(self, *, secret: str, ttl_seconds: float) -> None:
        # NB: an empty secret means "this process only": sessions end when it restarts.
        key = secret or secrets.token_hex(32)
        self._cookies = URLSafeTimedSerializer(key, salt="aetherius-session")
        self._csrf = hmac.new(hashlib.sha256(key.encode()).digest(), b"csrf", hashlib.sha256).digest()
        self.ttl = ttl_seconds

    def issue(self, *, token_id: str) -> tuple[str, str]:
        """A new cookie value and the session id it carries."""
        session_id = secrets.token_urlsafe(18)
        return self._cookies.dumps({"sid": session_id, "tid": token_id}), session_id

    def verify(self, cookie: str) -> tuple[str, str] | None:
        """``(session_id, token_id)`` of a valid, unexpired cookie, else None (never an error:
        a cookie is whatever the client sent, non-ASCII bytes included)."""
        try:
            data = self._cookies.loads(cookie, max_age=int(self.ttl))
        except (BadData, UnicodeError, ValueError, TypeError):
            return None
        if not isinstance(data, dict):
            return None
        session_id, token_id = data.get("sid"), data.get("tid")
        if not isinstance(session_id, str) or not isinstance(token_id, str):
            return None
        return session_id, token_id

    def csrf_token(self, session_id: str) -> str:
        digest = hmac.new(self._csrf, session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def check_csrf(self, session_id: str, presented: str | None) -> bool:
        return same_secret(self.csrf_token(session_id), presented)


def same_secret(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of two strings of any content.

    NB: ``hmac.compare_digest`` raises TypeError on non-ASCII ``str``: a cookie or form value
    with one turned a forgery attempt into a 500. Bytes compare whatever the client sent.
    """
    if not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogateescape"))


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def identify(request: Request, *, authority: TokenAuthority, signer: SessionSigner) -> Principal | None:
    """The caller, from a bearer token first, else from a session cookie; None if neither."""
    token = bearer_token(request)
    if token is not None:
        return await authority.authenticate(token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    verified = signer.verify(cookie)
    if verified is None:
        return None
    session_id, token_id = verified
    if await authority.session_ended(session_id):
        return None
    principal = await authority.lookup(token_id)
    if principal is None:
        return None
    return Principal(
        token_id=principal.token_id,
        name=principal.name,
        role=principal.role,
        via="session",
        session_id=session_id,
    )


def authorize(
    principal: Principal | None,
    *,
    role: Role,
    request: Request,
    signer: SessionSigner,
    limiter: RateLimiter,
) -> Principal:
    """Raise the right problem (401, 403, 429) or return the principal allowed to proceed."""
    if principal is None:
        presented = bearer_token(request) is not None or SESSION_COOKIE in request.cookies
        raise Problem(
            401,
            "the token is unknown, revoked or expired" if presented else "send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="aetherius"'},
        )
    wait = limiter.acquire(f"token:{principal.token_id}")
    if wait > 0:
        raise Problem(429, "rate limit exceeded for this token", headers=retry_after_header(wait))
    if not principal.has(role):
        raise Problem(403, f"this route needs the {role} role; the token has {principal.role}")
    if (
        principal.via == "session"
        and request.method not in _SAFE_METHODS
        and not signer.check_csrf(principal.session_id, request.headers.get(CSRF_HEADER))
    ):
        raise Problem(403, f"missing or wrong {CSRF_HEADER} header for this session", kind="csrf")
    return principal


RoleDependency = Callable[[Request], Awaitable[Principal]]
