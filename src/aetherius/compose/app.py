"""The API with the dashboard mounted: what ``aetherius api`` and ``aetherius run`` serve.

The API room builds the API and the Event Gateway; the dashboard (the web room) reads the same
context and is mounted here, above both, so neither room imports the other.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from aetherius.api.app import create_app as create_api
from aetherius.web.routes import install_dashboard

__all__ = ["DASHBOARD", "create_app"]

DASHBOARD = (install_dashboard,)


def create_app(*, with_dashboard: bool = True, **kwargs: Any) -> FastAPI:
    """``aetherius.api.app.create_app`` (same arguments) with the dashboard mounted."""
    return create_api(extensions=DASHBOARD if with_dashboard else (), **kwargs)
