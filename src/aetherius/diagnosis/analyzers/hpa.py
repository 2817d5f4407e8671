"""HorizontalPodAutoscaler analyzer: a scale target that does not exist, metrics it cannot read
(pods without the resource requests its utilization needs, no metrics API)."""

from __future__ import annotations

from typing import Any

from aetherius.diagnosis.analyzers._common import conditions
from aetherius.diagnosis.context import Context
from aetherius.diagnosis.index import meta, section
from aetherius.diagnosis.model import Finding

Obj = dict[str, Any]


def hpa(obj: Obj, ctx: Context) -> list[Finding]:
    metadata, spec = meta(obj), section(obj, "spec")
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    target = spec.get("scaleTargetRef") or {}
    kind, target_name = str(target.get("kind") or ""), str(target.get("name") or "")
    conds = conditions(obj)
    if (
        kind in ("Deployment", "StatefulSet", "ReplicaSet")
        and ctx.index.has(kind)
        and ctx.index.get(kind, namespace, target_name) is None
    ):
        return [
            _finding(
                ctx,
                namespace,
                name,
                "MissingReference",
                f"its scale target {kind} {target_name} does not exist",
                [f"spec.scaleTargetRef={kind}/{target_name}: not found"],
                [f"Point scaleTargetRef at an existing workload or create {kind} {target_name}."],
            )
        ]
    for cond_type in ("AbleToScale", "ScalingActive"):
        cond = conds.get(cond_type)
        if cond is None or cond.get("status") != "False":
            continue
        reason, message = str(cond.get("reason") or ""), str(cond.get("message") or "")
        evidence = [f"status.conditions[{cond_type}]=False reason={reason}: {message}"]
        if "missing request for" in message:
            resource = message.split("missing request for", 1)[1].split()[0]
            return [
                _finding(
                    ctx,
                    namespace,
                    name,
                    "MissingConfiguration",
                    f"pods of {kind} {target_name} set no {resource} request, so utilization cannot be computed",
                    evidence,
                    [
                        f"Set resources.requests.{resource} on every container of {kind} {target_name} (utilization targets are a percentage of the request)."
                    ],
                )
            ]
        if reason == "FailedGetScale" or "not found" in message:
            return [
                _finding(
                    ctx,
                    namespace,
                    name,
                    "MissingReference",
                    f"it cannot read the scale of {kind} {target_name}",
                    evidence,
                    [f"Point scaleTargetRef at an existing workload (now {kind}/{target_name})."],
                )
            ]
        if (
            "metrics API" in message
            or "metrics.k8s.io" in message
            or "custom.metrics" in message
            or "external.metrics" in message
        ):
            return [
                _finding(
                    ctx,
                    namespace,
                    name,
                    "DependencyUnavailable",
                    "the metrics API it reads does not answer",
                    evidence,
                    [
                        "Install or repair metrics-server (or the adapter serving custom/external metrics): kubectl get apiservices | grep metrics."
                    ],
                )
            ]
        if reason == "InvalidSelector" or "selector" in message.lower():
            return [
                _finding(
                    ctx,
                    namespace,
                    name,
                    "SelectorMismatch",
                    "its target's selector is invalid or overlaps another HPA",
                    evidence,
                    ["Give the target workload a selector of its own, and one HPA per workload."],
                )
            ]
        return [
            _finding(
                ctx,
                namespace,
                name,
                "Unknown",
                f"{cond_type} is False ({reason})",
                evidence,
                [f"kubectl describe hpa -n {namespace} {name}"],
            )
        ]
    return []


def _finding(
    ctx: Context, namespace: str, name: str, root: str, words: str, evidence: list[str], recs: list[str]
) -> Finding:
    return ctx.finding(
        kind="HorizontalPodAutoscaler",
        namespace=namespace,
        name=name,
        reason="HPAMisconfigured",
        root_cause=root,
        severity="warning",
        summary=f"HorizontalPodAutoscaler {name} cannot scale: {words}.",
        evidence=evidence,
        recommendations=recs,
    )


CHECKS = {"HorizontalPodAutoscaler": hpa}
