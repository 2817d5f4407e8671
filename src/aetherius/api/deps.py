"""What every route receives: the one ``ApiContext`` built by ``create_app`` — no globals.

Routes reach the store, bus and auth through ``Depends(app_context)`` and declare the least role they
need with ``Depends(requires("operator"))``; tests build an app per store and bus they want.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from prometheus_client import Counter

from aetherius.api.auth import (
    SESSION_COOKIE,
    Principal,
    Role,
    SessionSigner,
    TokenAuthority,
    authorize,
    bearer_token,
    identify,
)
from aetherius.api.limits import retry_after_header
from aetherius.api.problems import Problem
from aetherius.bus.base import SignalBus
from aetherius.config import Settings
from aetherius.ratelimit import RateLimiter
from aetherius.store import Store

if TYPE_CHECKING:
    from aetherius.api.events import IncidentEvents
    from aetherius.reasoning.service import Investigations

AUTH_FAILURES = Counter(
    "aetherius_api_auth_failures_total",
    "Requests with a wrong, revoked or ended token or session (refused), and those turned away "
    "before any lookup because their address failed too often (throttled)",
    ["result"],
)

DiagnoseFn = Callable[[str, str | None], Awaitable[dict[str, Any]]]
"""``(namespace, cluster_id) -> findings document`` per the diagnosis contract."""


class UnknownCluster(LookupError):
    """The diagnosis names a cluster this process does not read (or none, where it reads several)."""


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    bus: SignalBus
    authority: TokenAuthority
    signer: SessionSigner
    limiter: RateLimiter
    webhook_limiter: RateLimiter
    diagnose: DiagnoseFn | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    events: IncidentEvents | None = None
    investigations: Investigations | None = None  # None: reasoning is not part of this process
    # Failed authentications per client address (see ``requires``).
    auth_failures: RateLimiter = field(default_factory=lambda: RateLimiter(rate=0.5, burst=20))


def context(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


async def app_context(request: Request) -> ApiContext:
    """``context`` as a dependency.

    NB: FastAPI runs a plain ``def`` dependency in its thread pool; a coroutine runs inline, which
    spares every request a thread hand-off (measurable on the incident list under load).
    """
    return context(request)


async def revoke_access(ctx: ApiContext, token_id: int) -> bool:
    """Revoke a token: refused from the next request on, and its open event streams end now."""
    from aetherius.api import data

    if not await data.revoke_token(ctx.store, token_id):
        return False
    ctx.authority.forget()
    if ctx.events is not None:
        ctx.events.close_token(str(token_id))
    return True


def requires(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting callers holding at least ``role`` (401/403/429 otherwise)."""

    async def dependency(request: Request) -> Principal:
        ctx = context(request)
        client = f"client:{request.client.host if request.client else '?'}"
        presented = bearer_token(request) is not None or SESSION_COOKIE in request.cookies
        # NB: checked before the store is asked: guessing tokens costs the guesser, not the store.
        wait = ctx.auth_failures.wait(client) if presented else 0.0
        if wait > 0:
            AUTH_FAILURES.labels(result="throttled").inc()
            raise Problem(
                429, "too many failed authentications from this address", headers=retry_after_header(wait)
            )
        principal = await identify(request, authority=ctx.authority, signer=ctx.signer)
        if principal is None and presented:
            AUTH_FAILURES.labels(result="refused").inc()
            ctx.auth_failures.acquire(client)
        allowed = authorize(principal, role=role, request=request, signer=ctx.signer, limiter=ctx.limiter)
        request.state.principal = allowed
        return allowed

    dependency.__name__ = f"requires_{role}"
    return dependency
