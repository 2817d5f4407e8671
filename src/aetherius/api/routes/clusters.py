"""Clusters Aetherius watches, with their watcher health and the last Signal seen."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from aetherius.api import data
from aetherius.api.auth import Principal
from aetherius.api.cluster_status import cluster_out
from aetherius.api.deps import ApiContext, app_context, requires
from aetherius.api.problems import Problem, problem_responses
from aetherius.api.schemas import ClusterDetail, ClusterOut

router = APIRouter(prefix="/clusters", tags=["clusters"], responses=problem_responses(401, 403, 429))
Ctx = Annotated[ApiContext, Depends(app_context)]
Viewer = Annotated[Principal, Depends(requires("viewer"))]


@router.get("")
async def list_clusters(ctx: Ctx, _: Viewer) -> list[ClusterOut]:
    """Every cluster Aetherius has heard of, with its status (connected, stale, unreachable)."""
    return [cluster_out(c) for c in await data.list_clusters(ctx.store)]


@router.get("/{cluster_id}", responses=problem_responses(404))
async def get_cluster(cluster_id: str, ctx: Ctx, _: Viewer) -> ClusterDetail:
    detail = await data.cluster_detail(ctx.store, cluster_id)
    if detail is None:
        raise Problem(404, f"no cluster {cluster_id!r}")
    return detail
