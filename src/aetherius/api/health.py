"""Liveness and readiness of the API role (``/health/live``, ``/health/ready``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from aetherius.api.deps import ApiContext, app_context
from aetherius.api.problems import Problem, problem_responses

router = APIRouter(prefix="/health", tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/live")
async def live() -> Health:
    return Health(status="ok")


@router.get("/ready", responses=problem_responses(503))
async def ready(ctx: Annotated[ApiContext, Depends(app_context)]) -> Health:
    """Ready when the store answers a query."""
    try:
        await ctx.store.ping()
    except Exception as exc:
        raise Problem(503, f"the store does not answer: {type(exc).__name__}") from None
    return Health(status="ok")
