"""The dashboard: server-rendered pages over the same data functions the REST API uses.

Pages work without JavaScript; ``static/app.js`` only adds live updates (SSE). A person logs in
by pasting an API token once; the session cookie is HttpOnly and SameSite=Strict, and every form
that changes something carries the session's CSRF token.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from aetherius.api import data
from aetherius.api.auth import SESSION_COOKIE, Principal, Role, identify, same_secret
from aetherius.api.deps import ApiContext, context, revoke_access
from aetherius.api.problems import Problem, install_problem_pages
from aetherius.api.routes.investigations import out as investigation_out
from aetherius.api.schemas import RowId
from aetherius.store.knowledge import resolution_of
from aetherius.web import spend, views
from aetherius.web.errors import login_url, problem_page
from aetherius.web.templating import HERE
from aetherius.web.templating import render as _render

LOGIN_CSRF_COOKIE = "aetherius_login_csrf"
NEW_TOKEN_COOKIE = "aetherius_new_token"
router = APIRouter(include_in_schema=False)


class _LoginRequired(Exception):
    pass


async def _session(request: Request, *, role: Role = "viewer") -> tuple[ApiContext, Principal]:
    ctx = context(request)
    principal = await identify(request, authority=ctx.authority, signer=ctx.signer)
    if principal is None or principal.via != "session":
        raise _LoginRequired
    request.state.principal = principal  # NB: an error page shows this session's navigation.
    if ctx.limiter.acquire(f"token:{principal.token_id}") > 0:
        raise Problem(429, "rate limit exceeded for this session", headers={"Retry-After": "1"})
    if not principal.has(role):
        raise Problem(403, f"this page needs the {role} role; you are {principal.role}")
    return ctx, principal


def _secure(request: Request) -> bool:
    """Cookies are Secure whenever the browser came over TLS: directly, or through a trusted proxy
    whose X-Forwarded-Proto uvicorn applied (``api.trusted_proxies``); or when configured so."""
    return context(request).settings.api.secure_cookies or request.url.scheme == "https"


def _check_csrf(ctx: ApiContext, principal: Principal, token: str) -> None:
    if not ctx.signer.check_csrf(principal.session_id, token):
        raise Problem(403, "the form's CSRF token is missing or stale: reload the page", kind="csrf")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/", error: str = "") -> Response:
    nonce = secrets.token_urlsafe(18)
    response = _render(request, "login.html", None, next=views.safe_next(next), error=error, login_csrf=nonce)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, nonce, httponly=True, samesite="strict", path="/login", secure=_secure(request)
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    ctx = context(request)
    target = views.safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not same_secret(expected, csrf_token):
        return RedirectResponse(f"/login?error=expired&next={quote(target)}", status_code=303)
    if ctx.limiter.acquire(f"login:{request.client.host if request.client else '-'}") > 0:
        raise Problem(429, "too many login attempts; wait a moment", headers={"Retry-After": "5"})
    principal = await ctx.authority.authenticate(token.strip())
    if principal is None:
        return RedirectResponse(f"/login?error=invalid&next={quote(target)}", status_code=303)
    cookie, _ = ctx.signer.issue(token_id=principal.token_id)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=int(ctx.signer.ttl),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, csrf_token: Annotated[str, Form(max_length=64)] = "") -> Response:
    ctx, me = await _session(request)
    _check_csrf(ctx, me, csrf_token)
    # NB: deleting the cookie only asks the browser; a copy of it must stop working too.
    await ctx.authority.end_session(me.session_id, ttl=ctx.signer.ttl)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request) -> Response:
    ctx, me = await _session(request)
    rendered_at = datetime.now(UTC)
    clusters = await data.list_clusters(ctx.store)
    recent = await data.recent_incidents(ctx.store, limit=500)
    open_ = [i for i in recent if i.state != "resolved"]
    return _render(
        request,
        "overview.html",
        me,
        clusters=views.overview_clusters([views.cluster_health(c) for c in clusters], open_),
        by_severity=views.count_by_severity(open_),
        open_incidents=open_[:10],
        chart=views.incidents_chart(recent),
        events_url=views.events_url(since=rendered_at),
    )


@router.get("/clusters", response_class=HTMLResponse)
async def clusters_page(request: Request) -> Response:
    """Every cluster: connected, stale or unreachable, its watcher, and how its id was found."""
    ctx, me = await _session(request)
    clusters = [views.cluster_health(c) for c in await data.list_clusters(ctx.store)]
    return _render(
        request,
        "clusters.html",
        me,
        clusters=clusters,
        spend=await spend.today(ctx),
        reasoning_enabled=ctx.settings.reasoning.enabled
        or (ctx.investigations is not None and ctx.investigations.available),
    )


@router.get("/incidents", response_class=HTMLResponse)
async def incidents(
    request: Request,
    cluster: str = "",
    namespace: str = "",
    severity: str = "",
    state: str = "",
    q: str = "",
    cursor: str = "",
) -> Response:
    ctx, me = await _session(request)
    rendered_at = datetime.now(UTC)
    filters = views.IncidentFilterForm.parse(
        cluster=cluster, namespace=namespace, severity=severity, state=state, q=q
    )
    page = await data.list_incidents(
        ctx.store,
        cluster=filters.cluster or None,
        namespace=filters.namespace or None,
        severity=filters.severity or None,
        state=filters.state or None,
        text=filters.q or None,
        cursor=cursor or None,
        limit=50,
    )
    known = [views.cluster_health(c) for c in await data.list_clusters(ctx.store)]
    return _render(
        request,
        "incidents.html",
        me,
        page=page,
        filters=filters,
        clusters=known,
        next_query=filters.query(page.next_cursor),
        states=views.INCIDENT_STATES,
        rendered_at=rendered_at.isoformat(),
        events_url=views.events_url(since=rendered_at, cluster=filters.cluster),
    )


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident(request: Request, incident_id: RowId, done: str = "") -> Response:
    ctx, me = await _session(request)
    detail = await data.incident_detail(ctx.store, incident_id)
    if detail is None:
        raise Problem(404, f"no incident {incident_id}")
    report = views.ReportView.of(detail)
    runbook = data.runbook(report.runbook) if report.runbook else None
    rows, capped = views.timeline(detail.signals, limit=data.TIMELINE_LIMIT)
    with data.store_errors():
        latest = await ctx.store.list_investigations(incident_id, limit=1)
        # NB: reopening clears the incident's note; the past-incident document keeps it
        earlier = None
        if detail.incident.reopen_count and detail.incident.state != "resolved":
            earlier = await ctx.store.get_document(source="incident", slug=f"incident-{incident_id}")
    return _render(
        request,
        "incident.html",
        me,
        d=detail,
        i=detail.incident,
        report=report,
        runbook=runbook,
        done=done,
        timeline=rows,
        timeline_note=capped,
        earlier_note=resolution_of(earlier.body) if earlier is not None else "",
        rendered_at=datetime.now(UTC).isoformat(),
        investigation=investigation_out(latest[0]) if latest else None,
        reasoning=ctx.investigations is not None and ctx.investigations.available,
    )


@router.post("/incidents/{incident_id}/{action}")
async def incident_action(
    request: Request,
    incident_id: RowId,
    action: str,
    note: Annotated[str, Form(max_length=10_000)] = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    ctx, me = await _session(request, role="operator")
    _check_csrf(ctx, me, csrf_token)
    if action == "acknowledge":
        changed = await data.acknowledge(ctx.store, incident_id, note=note, by=me.name)
    elif action == "resolve":
        changed = await data.resolve(ctx.store, incident_id, note=note, by=me.name)
    else:
        raise Problem(404, f"no action {action!r}; use acknowledge or resolve")
    if ctx.events is not None:
        ctx.events.publish(changed)
    return RedirectResponse(f"/incidents/{incident_id}?done={action}", status_code=303)


@router.get("/knowledge", response_class=HTMLResponse)
async def knowledge(request: Request, q: str = "") -> Response:
    ctx, me = await _session(request)
    query = q.strip()[:200]
    hits = await data.search_knowledge(ctx.store, query, limit=20) if query else []
    runbooks = data.runbooks()
    return _render(
        request,
        "knowledge.html",
        me,
        q=query,
        hits=hits,
        runbooks=runbooks,
        runbook_slugs={r.slug for r in runbooks},
    )


@router.get("/knowledge/runbooks/{slug}", response_class=HTMLResponse)
async def runbook_page(request: Request, slug: str) -> Response:
    """One runbook as written: its commands keep their placeholders (an incident fills them in)."""
    _, me = await _session(request)
    runbook = data.runbook(slug)
    if runbook is None:
        raise Problem(404, f"no runbook {slug!r}")
    return _render(request, "runbook.html", me, runbook=runbook)


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, created: str = "") -> Response:
    ctx, me = await _session(request, role="admin")
    response = _render(
        request,
        "settings.html",
        me,
        tokens=await data.list_tokens(ctx.store),
        sinks=data.sinks(ctx.settings),
        created=request.cookies.get(NEW_TOKEN_COOKIE, "") if created else "",
    )
    response.delete_cookie(NEW_TOKEN_COOKIE, path="/settings")
    return response


@router.post("/settings/tokens")
async def settings_create_token(
    request: Request,
    name: Annotated[str, Form(min_length=1, max_length=128)],
    role: Annotated[str, Form(pattern="^(viewer|operator|admin)$")],
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    ctx, me = await _session(request, role="admin")
    _check_csrf(ctx, me, csrf_token)
    created = await data.create_token(ctx.store, name=name, role=role)
    # NB: the secret travels to the next page in a short-lived HttpOnly cookie, never in a URL.
    response = RedirectResponse("/settings?created=1", status_code=303)
    response.set_cookie(
        NEW_TOKEN_COOKIE,
        created.token,
        max_age=60,
        httponly=True,
        samesite="strict",
        path="/settings",
        secure=_secure(request),
    )
    return response


@router.post("/settings/tokens/{token_id}/revoke")
async def settings_revoke_token(
    request: Request, token_id: RowId, csrf_token: Annotated[str, Form(max_length=64)] = ""
) -> Response:
    ctx, me = await _session(request, role="admin")
    _check_csrf(ctx, me, csrf_token)
    if str(token_id) == me.token_id:
        raise Problem(409, "you cannot revoke the token of your own session")
    await revoke_access(ctx, token_id)
    return RedirectResponse("/settings", status_code=303)


def install_dashboard(app: FastAPI) -> None:
    """Mount the pages and their static files on ``app``."""

    async def login_required(request: Request, exc: Exception) -> Response:
        return RedirectResponse(login_url(request), status_code=303)

    app.add_exception_handler(_LoginRequired, login_required)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    install_problem_pages(app, problem_page)
