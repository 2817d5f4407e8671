"""The dashboard's "Reasoning spend": today's tokens and cost of investigations per cluster, against
the daily token budget each cluster has (``reasoning.daily_tokens_per_cluster``).

Why two figures for tokens: the investigations give input and output apart (and so the cost), while
the budget's own counter (Redis or the store, shared by replicas) is what gates the next model
call; where this process holds the investigator, the counter's figure is shown beside them, and the
share of the budget is taken from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aetherius.api.deps import ApiContext


@dataclass(frozen=True)
class SpendRow:
    """One cluster's reasoning spend today, as the clusters page shows it."""

    cluster_id: str
    investigations: int
    tokens_in: int
    tokens_out: int
    cost: float
    counted: int | None  # tokens the daily budget counted today (None: no budget in this process)
    budget: int

    @property
    def used_percent(self) -> int:
        spent = self.counted if self.counted is not None else self.tokens_in + self.tokens_out
        return min(100, round(100 * spent / self.budget)) if self.budget else 100


async def today(ctx: ApiContext, *, now: dt.datetime | None = None) -> list[SpendRow]:
    """Per cluster with an investigation touched since UTC midnight (the budget's day)."""
    moment = now or dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(moment.date(), dt.time(), tzinfo=dt.UTC)
    investigator = ctx.investigations.investigator if ctx.investigations is not None else None
    limit = (
        investigator.budget.limit
        if investigator is not None
        else ctx.settings.reasoning.daily_tokens_per_cluster
    )
    rows = []
    for spend in await ctx.store.reasoning_spend(since=midnight):
        counted = None
        if investigator is not None:
            counted = investigator.budget.limit - await investigator.budget.remaining(spend.cluster_id)
        rows.append(
            SpendRow(
                cluster_id=spend.cluster_id,
                investigations=spend.investigations,
                tokens_in=spend.tokens_in,
                tokens_out=spend.tokens_out,
                cost=spend.cost,
                counted=counted,
                budget=limit,
            )
        )
    return rows
