"""Investigations over a real store, a snapshot cluster holding the incident's pod and a scripted
model server: what the API, dashboard and orchestrator tests start investigations with."""

from __future__ import annotations

from typing import Any

import orjson

from aetherius.config import ReasoningSettings
from aetherius.gateway import AuditSink, ExecutionGateway, parse_snapshot, snapshot_gateway
from aetherius.reasoning.budget import StoreBudget, StoreCache, TokenBudget
from aetherius.reasoning.client import ChatClient
from aetherius.reasoning.investigator import Investigator
from aetherius.reasoning.privacy import Pseudonymizer
from aetherius.reasoning.service import Investigations
from aetherius.store import Store
from tests.reasoning.conftest import KEY, cluster
from tests.reasoning.scripted_llm import text, tool_calls

FATAL = "FATAL cannot reach payments.shop.svc:8443: connection refused"


def gateway_for(pod: str, namespace: str = "shop") -> Any:
    """A snapshot cluster whose crashing pod is the incident's own (its logs say why)."""
    doc = orjson.dumps(cluster()).decode().replace("checkout-7f9c", pod)
    doc = doc.replace('"namespace":"shop"', f'"namespace":"{namespace}"')
    state = parse_snapshot(doc.encode())

    def build(cluster_id: str, audit: AuditSink) -> ExecutionGateway:
        return snapshot_gateway(state, audit=audit)

    return build


def pseudonym(kind: str, name: str) -> str:
    return Pseudonymizer(KEY).add(kind, name)


def good_script(name: str, *, summary: str = "the payments dependency refuses connections") -> list[Any]:
    """One log read of pod ``name``, then an answer quoting a line it read (verified) and one it
    never read (unverified)."""
    pod = pseudonym("pod", name)
    return [
        tool_calls(("pod_logs", {"name": pod, "container": "app", "previous": True})),
        text(
            {
                "summary": f"{pod} crashes: {summary}.",
                "root_cause": "CrashLoopBackOff",
                "evidence": [
                    {"claim": "the dependency refuses connections", "quote": FATAL},
                    {"claim": "memory", "quote": "OOM killer invoked for checkout"},
                ],
                "next_steps": ["check the payments service"],
                "kubectl": [f"kubectl logs {pod} -c app --previous"],
            }
        ),
    ]


def make_investigations(
    store: Store,
    url: str,
    *,
    pod: str,
    namespace: str = "shop",
    budget: TokenBudget | None = None,
    enabled: bool = True,
    **over: Any,
) -> Investigations:
    settings = ReasoningSettings(
        enabled=enabled,
        base_url=url,
        model="scripted-1",
        max_steps=6,
        price_per_input_token=0.00001,
        price_per_output_token=0.00003,
        **over,
    )
    investigator = None
    if enabled:
        client = ChatClient(base_url=url, model=settings.model, read_timeout=30, retry_budget=0)
        investigator = Investigator(
            client=client,
            settings=settings,
            key=KEY,
            cache=StoreCache(store),
            budget=budget if budget is not None else StoreBudget(store, 1_000_000),
        )
    return Investigations(
        store=store,
        settings=settings,
        investigator=investigator,
        gateway_for=gateway_for(pod, namespace),
        max_concurrent=2,
    )
