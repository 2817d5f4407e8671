"""The FastAPI application factory: one app per (settings, store, bus), nothing global.

``create_app`` wires the problem handlers, the request limits, the Event Gateway, the REST API
under ``/api/v1`` and the dashboard; ``aetherius api`` serves it with uvicorn, and tests build
their own with a real store and bus.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI

from aetherius import __version__
from aetherius.api.auth import SESSION_COOKIE, SessionSigner, TokenAuthority
from aetherius.api.deps import ApiContext, DiagnoseFn
from aetherius.api.events import IncidentEvents
from aetherius.api.limits import BodyLimitMiddleware, TimeoutMiddleware
from aetherius.api.problems import ProblemDocument, install_problem_handlers, problem_responses
from aetherius.bus.base import SignalBus
from aetherius.config import Settings
from aetherius.ratelimit import RateLimiter
from aetherius.reasoning.service import Investigations
from aetherius.store import Store

API_PREFIX = "/api/v1"
OPENAPI_URL = f"{API_PREFIX}/openapi.json"
STREAM_PREFIXES = (f"{API_PREFIX}/events", "/events")
STREAM_SUFFIXES = ("/events",)  # …/investigations/{id}/events


def create_app(
    *,
    settings: Settings,
    store: Store,
    bus: SignalBus,
    authority: TokenAuthority | None = None,
    diagnose: DiagnoseFn | None = None,
    investigations: Investigations | None = None,
    extensions: Sequence[Callable[[FastAPI], None]] = (),
) -> FastAPI:
    """Build the API + Event Gateway + dashboard app over ``store`` and ``bus``.

    ``authority`` defaults to the store's API tokens; ``diagnose`` (on-demand scans) is optional,
    and its routes answer 503 "diagnosis not configured" without it. ``investigations`` (the
    Reasoning Service) is optional too: without it, starting one answers 409 saying why.
    """
    from aetherius.api import health, webhooks
    from aetherius.api.routes import register_routes

    api = settings.api
    app = FastAPI(
        title="Aetherius",
        version=__version__,
        description="Read-only Kubernetes diagnostics: incidents, reports, knowledge, Event Gateway.",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # NB: Swagger UI loads from a CDN; the schema is served, the UI is not.
        redoc_url=None,
    )
    if authority is None:
        from aetherius.api.tokens import StoreTokenAuthority

        authority = StoreTokenAuthority(store)
    app.state.ctx = ApiContext(
        settings=settings,
        store=store,
        bus=bus,
        authority=authority,
        signer=SessionSigner(secret=api.session_secret, ttl_seconds=api.session_ttl.total_seconds()),
        limiter=RateLimiter(rate=api.rate_limit_per_second, burst=api.rate_limit_burst),
        webhook_limiter=RateLimiter(rate=api.rate_limit_per_second, burst=api.rate_limit_burst),
        auth_failures=RateLimiter(rate=api.auth_failures_per_minute / 60, burst=api.auth_failures_burst),
        diagnose=diagnose,
        investigations=investigations,
        events=IncidentEvents(
            poll=settings.api.events_poll_interval.total_seconds(),
            max_per_token=settings.api.max_streams_per_token,
        ),
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=api.max_body_bytes)
    app.add_middleware(
        TimeoutMiddleware,
        seconds=api.request_timeout.total_seconds(),
        exempt_prefixes=STREAM_PREFIXES,
        exempt_suffixes=STREAM_SUFFIXES,
    )
    app.include_router(health.router)
    app.include_router(webhooks.router)
    register_routes(app, prefix=API_PREFIX)
    for extend in extensions:  # the dashboard, mounted by the composition that serves it
        extend(app)
    _document_problems(app)
    return app


def settle_heap() -> None:
    """Collect once, then exempt everything alive from future collections (``gc.freeze``).

    Call when start-up is done (modules imported, app built, pools opened). Those ~160,000
    long-lived objects would otherwise be traversed by every full collection — tens of
    milliseconds, paid by whichever requests are in flight: a latency tail of the process's own
    making. Later garbage is collected as usual.
    """
    gc.collect()
    gc.freeze()


def _document_problems(app: FastAPI) -> None:
    """Complete the schema FastAPI derives: ``ProblemDocument``, how to authenticate (a bearer
    token, or the dashboard's session cookie; webhooks take their source's bearer token), and the
    errors any route can answer (500, and 401/403/429 wherever a token is needed)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).setdefault(
                "ProblemDocument", ProblemDocument.model_json_schema()
            )
            components["securitySchemes"] = {
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token (aetherius token create); on /webhooks, the source's token",
                },
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            }
            for path, operations in schema.get("paths", {}).items():
                guarded = (path.startswith(API_PREFIX) and path != OPENAPI_URL) or path.startswith(
                    "/webhooks"
                )
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    wanted = (401, 403, 429, 500) if guarded else (500,)
                    for status, entry in problem_responses(*wanted).items():
                        entry = {k: v for k, v in entry.items() if k != "model"}
                        responses.setdefault(str(status), entry)
                    if guarded:
                        operation["security"] = (
                            [{"bearerToken": []}]
                            if path.startswith("/webhooks")
                            else [{"bearerToken": []}, {"sessionCookie": []}]
                        )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
