"""The dashboard's one Jinja2 environment and the one way a page is rendered with its layout.

Pages and error pages share it, so an error page carries the same navigation and the same
session (the logout form's CSRF token) as the page a person came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from aetherius import __version__
from aetherius.api.auth import Principal
from aetherius.api.deps import context
from aetherius.web import views

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["version"] = __version__
templates.env.filters["ago"] = views.ago
templates.env.filters["stamp"] = views.stamp
templates.env.filters["markdown"] = views.markdown
templates.env.filters["headline"] = views.headline
templates.env.filters["fill_runbook"] = views.fill_runbook
templates.env.globals["past_title"] = views.past_title


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    ctx = context(request)
    csrf = ctx.signer.csrf_token(principal.session_id) if principal is not None else ""
    return templates.TemplateResponse(
        request,
        name,
        {"me": principal, "csrf": csrf, "page": name.removesuffix(".html"), **values},
        status_code=status_code,
        headers=dict(headers or {}),
    )
