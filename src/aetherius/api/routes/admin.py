"""Administration: API tokens and (read-only) notification sinks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from aetherius.api import data
from aetherius.api.auth import Principal
from aetherius.api.deps import ApiContext, app_context, requires, revoke_access
from aetherius.api.problems import Problem, problem_responses
from aetherius.api.schemas import RowId, SinkOut, TokenCreate, TokenCreated, TokenOut

router = APIRouter(tags=["admin"], responses=problem_responses(401, 403, 429))
Ctx = Annotated[ApiContext, Depends(app_context)]
Admin = Annotated[Principal, Depends(requires("admin"))]


@router.get("/tokens")
async def list_tokens(ctx: Ctx, _: Admin) -> list[TokenOut]:
    return await data.list_tokens(ctx.store)


@router.post("/tokens", status_code=201, responses=problem_responses(422))
async def create_token(body: TokenCreate, ctx: Ctx, _: Admin) -> TokenCreated:
    """A new token; its secret is in this response only (the store keeps a hash)."""
    return await data.create_token(ctx.store, name=body.name, role=body.role)


@router.delete("/tokens/{token_id}", status_code=204, responses=problem_responses(404, 409))
async def revoke_token(token_id: RowId, ctx: Ctx, who: Admin) -> None:
    if str(token_id) == who.token_id:
        raise Problem(409, "a token cannot revoke itself; use another admin token")
    if not await revoke_access(ctx, token_id):
        raise Problem(404, f"no active token {token_id}")


@router.get("/sinks")
async def list_sinks(ctx: Ctx, _: Admin) -> list[SinkOut]:
    return data.sinks(ctx.settings)
