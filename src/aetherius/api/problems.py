"""RFC 9457 problem documents: the one shape every error of the API takes.

A script calling Aetherius gets ``application/problem+json`` for every failure (validation,
unknown route, auth, limits, a bug of ours), so it can branch on ``status`` and show ``detail``
to a person. An unexpected exception is logged with its traceback and answered with a problem
that names no internals: the traceback stays in the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from aetherius.logs import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
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
    return orjson.dumps(body)


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
        return problem_response(
            status=500,
            detail="an internal error occurred; it has been logged",
            instance=request.url.path,
        )

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
