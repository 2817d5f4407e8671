"""Service analyzer: a selector that matches no pod (and the labels the pods do have), or pods that
match but none is ready (and why those pods are not)."""

from __future__ import annotations

from typing import Any

from aetherius.diagnosis.context import Context
from aetherius.diagnosis.index import Pod, group_of, meta, pod_name, pod_phase, pod_ready, section
from aetherius.diagnosis.model import Finding

Obj = dict[str, Any]


def _ready_addresses(ctx: Context, namespace: str, name: str, pods: list[Pod]) -> int | None:
    endpoints = ctx.index.get("Endpoints", namespace, name)
    if endpoints is not None:
        return sum(
            len(s.get("addresses") or []) for s in endpoints.get("subsets") or [] if isinstance(s, dict)
        )
    slices = _slices_by_service(ctx).get((namespace, name), [])
    if slices:
        return sum(
            1
            for s in slices
            for e in s.get("endpoints") or []
            if isinstance(e, dict) and (e.get("conditions") or {}).get("ready") is not False
        )
    if not pods:
        return None
    return sum(1 for pod in pods if pod_ready(pod))


def _slices_by_service(ctx: Context) -> dict[tuple[str, str], list[Obj]]:
    """EndpointSlices by (namespace, service), built once per scan: never a scan per Service."""
    table: dict[tuple[str, str], list[Obj]] | None = ctx.memo.get("slices_by_service")
    if table is None:
        table = {}
        for s in ctx.index.of_kind("EndpointSlice").values():
            metadata = s.get("metadata") or {}
            service_name = (metadata.get("labels") or {}).get("kubernetes.io/service-name")
            if isinstance(service_name, str):
                table.setdefault((str(metadata.get("namespace") or ""), service_name), []).append(s)
        ctx.memo["slices_by_service"] = table
    return table


def service(obj: Obj, ctx: Context) -> list[Finding]:
    metadata, spec = meta(obj), section(obj, "spec")
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    selector = spec.get("selector")
    if spec.get("type") == "ExternalName" or not isinstance(selector, dict) or not selector:
        return []  # no selector: endpoints are managed by hand or by another controller
    pods = [
        p for p in ctx.index.pods_matching(namespace, selector) if pod_phase(p) not in ("Succeeded", "Failed")
    ]
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
    if not pods:
        workload = workload_selected(ctx, namespace, selector)
        if workload is not None:
            return _workload_has_no_pods(ctx, namespace, name, wanted, workload)
        hints = []
        for key, value in sorted(selector.items()):
            values = [v for v in ctx.index.label_values(namespace, str(key)) if v != value]
            hints.append(
                f"pods in {namespace} have {key}={', '.join(values)}"
                if values
                else f"no pod in {namespace} has label {key}"
            )
        return [
            ctx.finding(
                kind="Service",
                namespace=namespace,
                name=name,
                reason="ServiceNoEndpoints",
                root_cause="SelectorMismatch",
                severity="critical",
                summary=f"Service {name} selects no pod: no pod in {namespace} has labels {wanted}.",
                evidence=[f"spec.selector={wanted}", "0 pods match", *hints],
                recommendations=[
                    f"Make spec.selector of Service {name} match the pod template labels ({'; '.join(hints)}), or fix the labels of the pods."
                ],
            )
        ]
    ready = _ready_addresses(ctx, namespace, name, pods)
    if ready is None or ready > 0:
        return []
    # The first pod (in name order, whatever order they were read in) that has a finding says why.
    first = next((f for pod in sorted(pods, key=pod_name) for f in _findings_of(ctx, pod)), None)
    if first is not None:
        root = first.root_cause
        evidence = [f"pod {first.name}: {first.reason} ({first.root_cause}): {first.summary}"]
        recs = first.recommendations[:2]
    else:
        root, evidence = "ProbeFailure", ["the pods run but none passes its readiness probe"]
        recs = [f"Check the readiness probes of the pods selected by {wanted}."]
    return [
        ctx.finding(
            kind="Service",
            namespace=namespace,
            name=name,
            reason="ServiceNoEndpoints",
            root_cause=root,
            severity="critical",
            summary=f"Service {name} has no ready endpoint: {len(pods)} pod(s) match {wanted} but none is ready.",
            evidence=[f"spec.selector={wanted}", f"{len(pods)} pods match, 0 ready addresses", *evidence],
            recommendations=recs,
        )
    ]


def workload_selected(ctx: Context, namespace: str, selector: dict[str, Any]) -> tuple[str, str, int] | None:
    """A workload whose pod template carries the selector's labels (its pods just do not exist)."""
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for (ns, name), obj in ctx.index.of_kind(kind).items():
            if ns != namespace:
                continue
            spec = obj.get("spec") or {}
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if isinstance(labels, dict) and all(labels.get(k) == v for k, v in selector.items()):
                replicas = spec.get("replicas", 1) if kind != "DaemonSet" else 1
                return kind, name, replicas if isinstance(replicas, int) else 1
    return None


def _workload_has_no_pods(
    ctx: Context, namespace: str, name: str, wanted: str, workload: tuple[str, str, int]
) -> list[Finding]:
    kind, workload_name, replicas = workload
    causes = [f for f in ctx.by_group.get(f"{kind}/{namespace}/{workload_name}", []) if f.kind == kind]
    if replicas == 0 or not causes:
        return []  # scaled to zero on purpose, or pods still being created
    cause = causes[0]
    return [
        ctx.finding(
            kind="Service",
            namespace=namespace,
            name=name,
            reason="ServiceNoEndpoints",
            root_cause=cause.root_cause,
            severity="critical",
            summary=f"Service {name} has no endpoint: {kind} {workload_name}, whose pods it selects ({wanted}), has none running.",
            evidence=[f"spec.selector={wanted}", "0 pods match", f"{kind} {workload_name}: {cause.summary}"],
            recommendations=cause.recommendations[:2],
        )
    ]


def _findings_of(ctx: Context, pod: Pod) -> list[Finding]:
    if not isinstance(pod, dict):
        return []  # a PlainPod: quiet, so no finding is about it
    namespace, name = pod_name(pod)
    owner, _ = ctx.index.owner_of(pod)
    group = group_of(owner, "Pod", namespace, name)
    return [f for f in ctx.by_group.get(group, []) if f.name == name]


CHECKS = {"Service": service}
