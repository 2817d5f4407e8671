"""Prometheus metrics of the Reasoning Service (served with the rest on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["CACHE_HITS", "COST", "ENDINGS", "STEPS", "TOKENS"]

TOKENS = Counter(
    "aetherius_reasoning_tokens_total", "Tokens sent to and received from the model", ["cluster", "direction"]
)
COST = Counter(
    "aetherius_reasoning_cost_total", "Cost of investigations, in the configured currency", ["cluster"]
)
STEPS = Counter("aetherius_reasoning_steps_total", "Model calls made by investigations", ["cluster"])
ENDINGS = Counter("aetherius_reasoning_investigations_total", "Investigations by how they ended", ["reason"])
CACHE_HITS = Counter("aetherius_reasoning_cache_hits_total", "Investigations answered from the cache")
