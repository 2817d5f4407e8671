"""Error pages: a problem document, rendered for the person whose browser received it.

The document (status, title, detail) is decided by the route that refused; this module only
phrases it for a person — what happened, what to do next, and where to go — and keeps its
status code. A 401 is not an error to a person: it sends them to the login page, coming back
to where they were afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from aetherius.api.auth import Principal, identify
from aetherius.api.deps import context
from aetherius.logs import get_logger
from aetherius.web import views
from aetherius.web.templating import render

_log = get_logger(__name__)
_KEPT_HEADERS = ("retry-after", "connection")

_ADVICE = {
    400: "Part of the address or the form is not valid. Go back and try again.",
    403: "You do not have access to this page with your current token.",
    404: "There is nothing at this address: it may have been mistyped, or the link is out of date.",
    405: "This address does not accept that kind of request. Go back and use the page's own buttons.",
    409: "That change conflicts with the incident's or token's current state. Reload the page to see it.",
    413: "The form is too large to send. Shorten the note and try again.",
    422: "Some of what the form sent is not valid. Go back, correct it and submit again.",
    429: "Too many requests in a short time. Wait a moment, then try again.",
    503: "Aetherius cannot reach its store right now. Try again in a few seconds.",
    504: "The page took too long to answer. Try again in a moment.",
}
_SERVER_ADVICE = (
    "Something went wrong on our side. It has been logged; try again, and if it keeps "
    "happening tell whoever runs Aetherius."
)


@dataclass(frozen=True)
class Action:
    href: str
    label: str


@dataclass(frozen=True)
class ErrorView:
    """What an error page says: the document's status and title, advice, and the ways on."""

    status: int
    title: str
    advice: str
    detail: str
    fields: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @classmethod
    def of(cls, problem: Mapping[str, Any], *, back: str, path: str, retry_after: str = "") -> ErrorView:
        status = int(problem["status"])
        kind = str(problem.get("type", "")).rsplit("/", 1)[-1]
        detail = str(problem.get("detail", ""))
        advice = _ADVICE.get(status, _SERVER_ADVICE if status >= 500 else "The request was refused.")
        actions = [Action(back, "Go back to the page")] if back != "/" else []
        if kind == "csrf":
            advice = "Your session form expired: reload the page and try again."
            actions = [Action(back, "Reload the page")]
        elif status == 404 and path.startswith("/incidents"):
            advice = "That incident does not exist: it may have been mistyped, or the link is out of date."
        elif status == 403:
            advice += " Ask an administrator for a token with the role this page needs."
        elif status == 429 and retry_after.isdigit():
            seconds = int(retry_after)
            advice = f"Too many requests in a short time. Wait {seconds} second{'s' * (seconds != 1)}, then try again."
        fields = [_field(e) for e in problem.get("errors") or () if isinstance(e, Mapping)]
        actions += [Action("/incidents", "Incident list"), Action("/", "Overview")]
        return cls(
            status=status,
            title=str(problem.get("title") or "Error"),
            advice=advice,
            # NB: a validation detail names the field by its wire path; the field list says it better.
            detail="" if fields else detail,
            fields=fields,
            actions=actions,
        )


def _field(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ()) if str(part) not in ("body", "query", "path")]
    name = ".".join(loc).replace("_", " ") or "request"
    return f"{name}: {error.get('msg', 'invalid')}"


def back_url(request: Request) -> str:
    """Where the person was: the page itself for a GET, the form's page (same site) otherwise."""
    if request.method in ("GET", "HEAD"):
        return views.safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.headers.get("host", ""):
        return "/"
    return views.safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def login_url(request: Request) -> str:
    return f"/login?next={quote(back_url(request))}"


async def _principal(request: Request, status: int) -> Principal | None:
    """The session whose navigation the page shows; looked up only if the route did not."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal) or status >= 500:
        # NB: after a failure of ours (or of the store) the page must not depend on the store.
        return known if isinstance(known, Principal) and known.via == "session" else None
    ctx = context(request)
    try:
        found = await identify(request, authority=ctx.authority, signer=ctx.signer)
    except Exception as exc:
        _log.warning("error page without navigation: the session could not be checked", error=str(exc))
        return None
    return found if found is not None and found.via == "session" else None


async def problem_page(request: Request, problem: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    """The ``ProblemPage`` renderer installed by the dashboard (see ``api.problems``)."""
    status = int(problem["status"])
    if status == 401:
        return RedirectResponse(login_url(request), status_code=303)
    kept = {k: v for k, v in headers.items() if k.lower() in _KEPT_HEADERS}
    view = ErrorView.of(
        problem,
        back=back_url(request),
        path=request.url.path,
        retry_after=next((v for k, v in kept.items() if k.lower() == "retry-after"), ""),
    )
    principal = await _principal(request, status)
    return render(request, "error.html", principal, status_code=status, headers=kept, error=view)
