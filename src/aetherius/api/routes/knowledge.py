"""Knowledge: search runbooks and past incidents; read the runbooks themselves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from aetherius.api import data
from aetherius.api.auth import Principal
from aetherius.api.deps import ApiContext, app_context, requires
from aetherius.api.problems import Problem, problem_responses
from aetherius.api.schemas import KnowledgeHit, RunbookOut, RunbookSummary

router = APIRouter(tags=["knowledge"], responses=problem_responses(401, 403, 429))
Ctx = Annotated[ApiContext, Depends(app_context)]
Viewer = Annotated[Principal, Depends(requires("viewer"))]


@router.get("/knowledge", responses=problem_responses(422))
async def search_knowledge(
    ctx: Ctx,
    _: Viewer,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[KnowledgeHit]:
    return await data.search_knowledge(ctx.store, q, limit=limit)


@router.get("/runbooks")
async def list_runbooks(_: Viewer) -> list[RunbookSummary]:
    return [RunbookSummary(slug=r.slug, title=r.title) for r in data.runbooks()]


@router.get("/runbooks/{slug}", responses=problem_responses(404))
async def get_runbook(slug: str, _: Viewer) -> RunbookOut:
    runbook = data.runbook(slug)
    if runbook is None:
        raise Problem(404, f"no runbook {slug!r}")
    return runbook
