"""``/api/v1``: one router module per resource, registered here in the order of the schema."""

from __future__ import annotations

from fastapi import FastAPI

from aetherius.api import events
from aetherius.api.routes import admin, clusters, diagnose, incidents, investigations, knowledge


def register_routes(app: FastAPI, *, prefix: str) -> None:
    for module in (clusters, incidents, investigations, knowledge, diagnose, admin):
        app.include_router(module.router, prefix=prefix)
    app.include_router(events.router, prefix=prefix)
