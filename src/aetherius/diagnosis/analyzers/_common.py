"""Helpers shared by the workload analyzers."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aetherius.diagnosis.context import Context
from aetherius.diagnosis.index import Malformed
from aetherius.diagnosis.model import Finding

Obj = dict[str, Any]


def conditions(obj: Obj) -> dict[str, Obj]:
    status = obj.get("status") or {}
    out: dict[str, Obj] = {}
    for cond in status.get("conditions") or ():
        if isinstance(cond, dict) and isinstance(cond.get("type"), str):
            out[cond["type"]] = cond
    return out


def int_field(obj: Obj, key: str, default: int = 0) -> int:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed(f"{key} is not an integer")
    return value


def pod_cause(ctx: Context, group: str) -> tuple[str, list[str], list[Finding]]:
    """The most common root cause among the pods of a workload, with the first pod's evidence.

    NB: in name order, not in the order the pods were read: a snapshot and a live LIST (and a
    diagnosis of the workload alone) then quote the same pod.
    """
    pods = sorted(
        (f for f in ctx.by_group.get(group, []) if f.kind in ("Pod", "ReplicaSet")),
        key=lambda f: (f.kind, f.name, f.container or ""),
    )
    if not pods:
        return "Unknown", [], []
    counts = Counter(f.root_cause for f in pods)
    root = counts.most_common(1)[0][0]
    first = next(f for f in pods if f.root_cause == root)
    evidence = [
        f"{len(pods)} pod finding(s): " + ", ".join(f"{r} x{n}" for r, n in counts.most_common()),
        f"pod {first.name}: {first.summary}",
    ]
    return root, evidence + first.evidence[:2], pods


def recs_from(pods: list[Finding], fallback: str) -> list[str]:
    for finding in pods:
        if finding.recommendations:
            return finding.recommendations[:2]
    return [fallback]


def cause_clause(finding: Finding) -> str:
    """A pod finding's summary as a clause, for a roll-up to say the cause first ("… — container
    api is killed for exceeding its 256Mi memory limit …")."""
    summary = finding.summary.rstrip(".")
    return summary[:1].lower() + summary[1:] if summary else ""
