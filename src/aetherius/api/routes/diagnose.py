"""On-demand diagnosis of one namespace, through the read-only Execution Gateway."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from aetherius.api.auth import Principal
from aetherius.api.deps import ApiContext, UnknownCluster, app_context, requires
from aetherius.api.problems import Problem, problem_responses
from aetherius.api.schemas import DiagnoseIn
from aetherius.diagnosis.engine import ClusterUnreadable

router = APIRouter(tags=["diagnosis"], responses=problem_responses(401, 403, 429))
Ctx = Annotated[ApiContext, Depends(app_context)]
Operator = Annotated[Principal, Depends(requires("operator"))]


@router.post("/diagnose", responses=problem_responses(404, 422, 503))
async def diagnose_namespace(body: DiagnoseIn, ctx: Ctx, _: Operator) -> dict[str, Any]:
    """Run the diagnosis engine now; the findings document follows docs/diagnosis-contract.md.

    ``cluster`` (or ``cluster_id``) names the cluster where one Aetherius reads several; a
    cluster it does not read is a 404.
    """
    if ctx.diagnose is None:
        raise Problem(
            503,
            "diagnosis not configured: this API has no Kubernetes client",
            kind="diagnosis-not-configured",
        )
    try:
        return await ctx.diagnose(body.namespace, body.cluster_id)
    except UnknownCluster as exc:
        raise Problem(404, str(exc), kind="unknown-cluster") from None
    except ClusterUnreadable as exc:
        # NB: a 503, never an empty findings list: "nothing found" about an unread cluster is a lie.
        raise Problem(503, f"the cluster could not be read: {exc}", kind="cluster-unreadable") from None
