"""RFC 9457 problem documents: the one shape every error of the API takes.

A script calling Aetherius gets ``application/problem+json`` for every failure (validation,
unknown route, auth, limits, a bug of ours), so it can branch on ``status`` and show ``detail``
to a person. An unexpected exception is logged with its traceback and answered with a problem
that names no internals: the traceback stays in the log.

A person's browser navigating the dashboard gets the same problem rendered as an HTML page: the
document stays the one source of truth (status, title, detail) and ``ProblemPageMiddleware``
is the one place that negotiates, so an error raised anywhere (a route, a dependency, the body
limit, the timeout) reaches a browser as a page with the right status and an API client as JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aetherius.logs import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
API_PATH_PREFIXES = ("/api/", "/webhooks/", "/health/")
"""Paths whose every answer is for a program: never an HTML page, whatever ``Accept`` says."""
_TYPE_BASE = "https://aetherius.dev/problems/"
_log = get_logger(__name__)

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
    504: "Request timed out",
}


class ProblemDocument(BaseModel):
    """The body of every error response (RFC 9457)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI naming the kind of problem")
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="per-field validation errors, when the request was invalid"
    )


class Problem(Exception):
    """Raise from anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(_TITLES.get(status, "error"))
        self.title = title or _TITLES.get(status, "Error")
        self.headers = dict(headers or {})
        self.errors = [dict(e) for e in errors] if errors is not None else None


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-")


def problem_body(
    *,
    status: int,
    detail: str,
    instance: str = "",
    kind: str | None = None,
    title: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "type": _TYPE_BASE + (kind or _slug(_TITLES.get(status, "error"))),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = list(errors)
    try:
        return orjson.dumps(body)
    except TypeError:
        # NB: the request's own text (a label key with a lone surrogate) can be quoted back in
        # ``detail`` or ``loc``; JSON cannot carry it, so it is escaped rather than turned into a 500.
        return orjson.dumps(_printable(body))


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def problem_response(
    *,
    status: int,
    detail: str,
    instance: str = "",
    kind: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> Response:
    body = problem_body(
        status=status, detail=detail, instance=instance, kind=kind, title=title, errors=errors
    )
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {}))


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        out.append({"loc": loc, "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))})
    return out


def _describe(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "the request is invalid"
    first = errors[0]
    where = ".".join(first["loc"]) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error FastAPI or Starlette can raise through a problem document."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(
            status=exc.status,
            detail=exc.detail,
            instance=request.url.path,
            kind=exc.kind,
            title=exc.title,
            headers=exc.headers,
            errors=exc.errors,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        return problem_response(
            status=exc.status_code,
            detail=detail,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        return problem_response(
            status=422, detail=_describe(errors), instance=request.url.path, errors=errors
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        _log.error("unhandled error", path=request.url.path, method=request.method, exc_info=exc)
        response = problem_response(
            status=500,
            detail="an internal error occurred; it has been logged",
            instance=request.url.path,
        )
        # NB: Starlette answers unhandled exceptions outside every middleware, so this one
        # response is negotiated here, through the same function the middleware uses.
        renderer: ProblemPage | None = getattr(request.app.state, "problem_page", None)
        if renderer is None or not wants_page(request.scope):
            return response
        return await as_page(request, bytes(response.body), dict(response.headers), renderer=renderer)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the problem documents a route may return."""
    return {
        status: {
            "model": ProblemDocument,
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}},
        }
        for status in statuses
    }


ProblemPage = Callable[[Request, Mapping[str, Any], Mapping[str, str]], Awaitable[Response]]
"""Renders a problem document (already the answer) as a page: ``(request, document, headers)``."""


def _quality(accept: str, media: str) -> float:
    """The q-value ``accept`` gives ``media`` (exact type, then ``type/*``, then ``*/*``)."""
    major = media.split("/", 1)[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        kind = kind.lower()
        specificity = 2 if kind == media else 1 if kind == f"{major}/*" else 0 if kind == "*/*" else -1
        if specificity < best[0] or specificity < 0:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = (specificity, q)
    return best[1]


def wants_page(scope: Scope) -> bool:
    """A person's browser navigating the dashboard, as opposed to a program calling the API.

    Outside the API paths, ``Accept`` decides: a browser asks for ``text/html`` first, while
    scripts (``*/*`` or JSON) keep getting problem documents, ties included.
    """
    path = str(scope.get("path", ""))
    if path.startswith(API_PATH_PREFIXES) or path in ("/api", "/webhooks", "/health"):
        return False
    accept = ""
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            accept = value.decode("latin-1")
            break
    html = _quality(accept, "text/html")
    return html > 0 and html > max(_quality(accept, "application/json"), _quality(accept, PROBLEM_MEDIA_TYPE))


async def as_page(
    request: Request, body: bytes, headers: Mapping[str, str], *, renderer: ProblemPage
) -> Response:
    """The page rendering of a problem ``body``; the problem itself if it cannot be rendered."""
    kept = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
    try:
        document = orjson.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("status"), int):
            raise ValueError("not a problem document")
        return await renderer(request, document, kept)
    except Exception as exc:  # NB: an error page must never become a traceback of its own.
        _log.error("problem page failed; answering the problem document", path=request.url.path, exc_info=exc)
        return Response(body, status_code=_status_of(body), media_type=PROBLEM_MEDIA_TYPE, headers=kept)


def _status_of(body: bytes) -> int:
    try:
        status = orjson.loads(body).get("status")
    except (orjson.JSONDecodeError, AttributeError):
        return 500
    return status if isinstance(status, int) and 400 <= status < 600 else 500


class ProblemPageMiddleware:
    """Turns a problem document answering a page request into its HTML page (see ``wants_page``).

    Only page requests are watched, and only a ``problem+json`` answer is buffered, so the API's
    hot paths and the event streams pass straight through.
    """

    def __init__(self, app: ASGIApp, *, renderer: ProblemPage) -> None:
        self.app = app
        self.renderer = renderer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_page(scope):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        passing = False
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
                return
            if start is None:
                if message["type"] == "http.response.start" and _is_problem(message):
                    start = message
                    return
                passing = True
                await send(message)
                return
            if message["type"] != "http.response.body":
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", ())}
            page = await as_page(Request(scope), b"".join(chunks), headers, renderer=self.renderer)
            await page(scope, receive, send)

        await self.app(scope, receive, capture)


def _is_problem(start: Message) -> bool:
    for name, value in start.get("headers", ()):
        if name.lower() == b"content-type":
            return bool(value.startswith(PROBLEM_MEDIA_TYPE.encode()))
    return False


def install_problem_pages(app: FastAPI, renderer: ProblemPage) -> None:
    """Render problems as pages for browsers; call after every other middleware is added."""
    app.state.problem_page = renderer
    app.add_middleware(ProblemPageMiddleware, renderer=renderer)
