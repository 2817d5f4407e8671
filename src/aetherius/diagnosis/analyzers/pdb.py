"""PodDisruptionBudget analyzer: a budget that selects no pod, or one that allows no disruption at
all (minAvailable equal to the replica count, or maxUnavailable 0), which blocks every drain."""

from __future__ import annotations

from typing import Any

from aetherius.diagnosis.analyzers._common import int_field
from aetherius.diagnosis.context import Context
from aetherius.diagnosis.index import meta, section
from aetherius.diagnosis.model import Finding

Obj = dict[str, Any]


def pdb(obj: Obj, ctx: Context) -> list[Finding]:
    metadata, spec = meta(obj), section(obj, "spec")
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    status = obj.get("status") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    pods = ctx.index.pods_matching(namespace, selector) if selector else []
    expected = int_field(status, "expectedPods", len(pods))
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
    if selector and not pods and expected == 0:
        return [
            ctx.finding(
                kind="PodDisruptionBudget",
                namespace=namespace,
                name=name,
                reason="PDBBlocking",
                root_cause="SelectorMismatch",
                severity="warning",
                summary=f"PodDisruptionBudget {name} selects no pod ({wanted}): it protects nothing.",
                evidence=[
                    f"spec.selector.matchLabels={wanted}",
                    "0 pods match",
                    f"status.expectedPods={expected}",
                ],
                recommendations=[
                    f"Fix the selector of PodDisruptionBudget {name} to the labels of the pods it should protect."
                ],
            )
        ]
    allowed = int_field(status, "disruptionsAllowed", -1)
    if allowed != 0 or expected == 0:
        return []
    healthy, desired = int_field(status, "currentHealthy"), int_field(status, "desiredHealthy")
    evidence = [
        f"status.disruptionsAllowed=0 currentHealthy={healthy} desiredHealthy={desired} expectedPods={expected}"
    ]
    if healthy < desired:
        return [
            ctx.finding(
                kind="PodDisruptionBudget",
                namespace=namespace,
                name=name,
                reason="PDBBlocking",
                root_cause="Unknown",
                severity="warning",
                summary=f"PodDisruptionBudget {name} blocks evictions: only {healthy} of the {desired} pods it requires are healthy.",
                evidence=evidence,
                recommendations=[
                    "Fix the unhealthy pods it selects (see their findings); drains will wait until then."
                ],
            )
        ]
    rule = (
        f"minAvailable={spec['minAvailable']}"
        if "minAvailable" in spec
        else f"maxUnavailable={spec.get('maxUnavailable')}"
    )
    return [
        ctx.finding(
            kind="PodDisruptionBudget",
            namespace=namespace,
            name=name,
            reason="PDBBlocking",
            root_cause="SchedulingConstraint",
            severity="warning",
            summary=f"PodDisruptionBudget {name} allows no disruption ({rule} with {expected} pods): node drains and upgrades will hang.",
            evidence=[*evidence, f"spec.{rule}"],
            recommendations=[
                f"Allow at least one disruption: lower {rule.split('=')[0]} (e.g. minAvailable={max(expected - 1, 0)}) or run more replicas."
            ],
        )
    ]


CHECKS = {"PodDisruptionBudget": pdb}
