"""Deployment, ReplicaSet, StatefulSet and DaemonSet analyzers.

A workload finding names the workload and takes its root cause from its pods' findings (already
computed: pods are analyzed first) or from the controller's own FailedCreate. A rollout that is
progressing within its deadline is not a problem.
"""

from __future__ import annotations

from typing import Any

from aetherius.diagnosis.analyzers._common import cause_clause, conditions, int_field, pod_cause, recs_from
from aetherius.diagnosis.context import STARTUP_GRACE_S, Context, unchecked
from aetherius.diagnosis.index import meta
from aetherius.diagnosis.model import Finding, Severity
from aetherius.diagnosis.rules.admission import classify_admission

Obj = dict[str, Any]
_ROLLING = ("ReplicaSetUpdated", "NewReplicaSetCreated", "FoundNewReplicaSet")


def _failed_create(
    ctx: Context, kind: str, namespace: str, name: str, uid: str, cond: Obj | None
) -> tuple[str, list[str]] | None:
    events = [ev for ev in ctx.index.events(kind, namespace, name, uid) if ev.reason == "FailedCreate"]
    message = str(cond.get("message") or "") if cond else ""
    if not message and events:
        message = max(events, key=lambda ev: ev.last).message
    if not message:
        return None
    evidence = [f"status.conditions[ReplicaFailure].message={message}"] if cond else []
    evidence += [ev.line() for ev in events[:2]]
    return classify_admission(message), evidence


def _admission_recs(root: str, where: str) -> list[str]:
    return [
        {
            "QuotaExceeded": f"The namespace's ResourceQuota/LimitRange refuses new pods of {where}: raise the quota, lower the pods' requests/limits, or free usage (see the QuotaExceeded finding).",
            "DependencyUnavailable": f"An admission webhook is unreachable, so no pod of {where} can be created: fix the webhook's service (see the WebhookUnavailable finding) or its failurePolicy.",
            "MissingReference": f"Create the object the error names (e.g. the ServiceAccount) or fix the reference in {where}.",
            "PermissionDenied": f"An admission policy denies the pods of {where}: change the pod spec to comply (the message names the rule).",
        }.get(root, f"Read the FailedCreate events of {where}.")
    ]


def deployment(obj: Obj, ctx: Context) -> list[Finding]:
    metadata, spec, status = meta(obj), ctx.part(obj, "spec", kind="Deployment"), obj.get("status") or {}
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    replicas = int_field(spec, "replicas", 1)
    available = int_field(status, "availableReplicas")
    if replicas == 0 or available >= replicas or spec.get("paused"):
        return []
    conds = conditions(obj)
    progressing, avail = conds.get("Progressing", {}), conds.get("Available", {})
    deadline = (
        progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded"
    )
    rolling = progressing.get("status") == "True" and progressing.get("reason") in _ROLLING
    if not deadline and (rolling or avail.get("status") != "False"):
        return []
    group = f"Deployment/{namespace}/{name}"
    root, evidence, pods = pod_cause(ctx, group)
    recs = recs_from(
        pods,
        f"kubectl rollout status -n {namespace} deployment/{name}; kubectl describe deployment -n {namespace} {name}",
    )
    rs_failure = next((f for f in ctx.by_group.get(group, []) if f.kind == "ReplicaSet"), None)
    if root == "Unknown" and rs_failure is not None:
        root, evidence, recs = rs_failure.root_cause, rs_failure.evidence, rs_failure.recommendations
    head = [f"availableReplicas={available}/{replicas}"]
    if deadline:
        head.append(
            f"status.conditions[Progressing]=False reason=ProgressDeadlineExceeded: {progressing.get('message', '')}"
        )
    if avail.get("status") == "False":
        head.append(f"status.conditions[Available]=False reason={avail.get('reason', '')}")
    severity: Severity = "critical" if available == 0 else "warning"
    first = next((p for p in pods if p.root_cause == root and p.kind == "Pod"), None)
    clause = cause_clause(first) if first is not None else ""
    what = (
        clause
        if clause
        else "its rollout exceeded its progress deadline"
        if deadline
        else "it has fewer available replicas than desired"
    )
    return [
        ctx.finding(
            kind="Deployment",
            namespace=namespace,
            name=name,
            reason="DeploymentUnavailable",
            root_cause=root,
            severity=severity,
            group=group,
            owner=None,
            summary=f"Deployment {name} has {available}/{replicas} replicas available: {what}.",
            evidence=head + evidence,
            recommendations=recs,
        )
    ]


def replicaset(obj: Obj, ctx: Context) -> list[Finding]:
    metadata, spec = meta(obj), ctx.part(obj, "spec", kind="ReplicaSet")
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    if int_field(spec, "replicas", 1) == 0:
        return []
    cond = conditions(obj).get("ReplicaFailure")
    cond = cond if cond and cond.get("status") == "True" else None
    failed = _failed_create(ctx, "ReplicaSet", namespace, name, str(metadata.get("uid") or ""), cond)
    if failed is None:
        return []
    status = obj.get("status") or {}
    if cond is None and int_field(status, "readyReplicas") >= int_field(spec, "replicas", 1):
        return []  # an old FailedCreate that has since been overcome
    root, evidence = failed
    owner, _ = ctx.index.owner_of(obj)
    group = f"{owner.kind}/{namespace}/{owner.name}" if owner else f"ReplicaSet/{namespace}/{name}"
    finding = ctx.finding(
        kind="ReplicaSet",
        namespace=namespace,
        name=name,
        reason="ReplicaSetFailedCreate",
        root_cause=root,
        severity="critical",
        owner=owner,
        group=group,
        summary=f"ReplicaSet {name} cannot create its pods: {evidence[0].split('=', 1)[-1][:160] if evidence else 'FailedCreate'}",
        evidence=evidence,
        recommendations=_admission_recs(
            root, f"{owner.kind} {owner.name}" if owner else f"ReplicaSet {name}"
        ),
    )
    ctx.by_group.setdefault(group, []).append(finding)
    return [finding]


def _set_finding(
    obj: Obj,
    ctx: Context,
    *,
    kind: str,
    desired: int,
    ready: int,
    extra: list[tuple[str, list[str], list[str]]],
) -> list[Finding]:
    metadata = meta(obj)
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    if desired == 0 or ready >= desired:
        return []
    group = f"{kind}/{namespace}/{name}"
    failed = _failed_create(ctx, kind, namespace, name, str(metadata.get("uid") or ""), None)
    root, evidence, pods = pod_cause(ctx, group)
    recs = recs_from(pods, f"kubectl describe {kind.lower()} -n {namespace} {name}")
    for cause, cause_evidence, cause_recs in extra:
        if cause == "Unknown":  # a reference that could not be checked: said, never a cause
            evidence = [*evidence, *cause_evidence]
        elif root == "Unknown":
            root, evidence, recs = cause, cause_evidence, cause_recs
    if root == "Unknown" and failed is not None:
        root, evidence = failed
        recs = _admission_recs(root, f"{kind} {name}")
    age = ctx.age(metadata.get("creationTimestamp"))
    if root == "Unknown" and age is not None and age < STARTUP_GRACE_S:
        return []  # NB: an unknown age is not young: no timestamps, no start-up grace
    severity: Severity = "critical" if ready == 0 else "warning"
    return [
        ctx.finding(
            kind=kind,
            namespace=namespace,
            name=name,
            reason=f"{kind}Unavailable",
            root_cause=root,
            severity=severity,
            group=group,
            summary=f"{kind} {name} has {ready}/{desired} pods ready"
            + (f": {clause}." if (clause := _clause(pods, root)) else "."),
            evidence=[f"ready={ready}/{desired}", *evidence],
            recommendations=recs,
        )
    ]


def _clause(pods: list[Finding], root: str) -> str:
    first = next((p for p in pods if p.root_cause == root and p.kind == "Pod"), None)
    return cause_clause(first) if first is not None else ""


def statefulset(obj: Obj, ctx: Context) -> list[Finding]:
    spec, status = ctx.part(obj, "spec", kind="StatefulSet"), obj.get("status") or {}
    namespace = str(meta(obj).get("namespace") or "")
    extra: list[tuple[str, list[str], list[str]]] = []
    if ctx.index.has("StorageClass"):
        classes = sorted(name for _, name in ctx.index.of_kind("StorageClass"))
        for template in spec.get("volumeClaimTemplates") or ():
            sc = ((template or {}).get("spec") or {}).get("storageClassName")
            if isinstance(sc, str) and sc and sc not in classes:
                extra.append(
                    (
                        "VolumeProvisioningFailure",
                        [
                            f"volumeClaimTemplates[{template.get('metadata', {}).get('name')}].storageClassName={sc}",
                            f"StorageClasses that exist: {', '.join(classes) or 'none'}",
                        ],
                        [
                            f"Use an existing StorageClass ({', '.join(classes) or 'none exist'}) in the volumeClaimTemplates, or create {sc}."
                        ],
                    )
                )
    if not ctx.index.has("StorageClass"):
        for template in spec.get("volumeClaimTemplates") or ():
            sc = ((template or {}).get("spec") or {}).get("storageClassName")
            if isinstance(sc, str) and sc:
                extra.append(("Unknown", [unchecked("StorageClass", "", sc)], []))
    service = spec.get("serviceName")
    if isinstance(service, str) and service and not ctx.index.has("Service"):
        extra.append(("Unknown", [unchecked("Service", namespace, service)], []))
    if (
        isinstance(service, str)
        and service
        and ctx.index.has("Service")
        and ctx.index.get("Service", namespace, service) is None
    ):
        extra.append(
            (
                "MissingReference",
                [f"spec.serviceName={service}: no such Service"],
                [f"Create the headless Service {service} (clusterIP: None) the StatefulSet names."],
            )
        )
    return _set_finding(
        obj,
        ctx,
        kind="StatefulSet",
        desired=int_field(spec, "replicas", 1),
        ready=int_field(status, "readyReplicas"),
        extra=extra,
    )


def daemonset(obj: Obj, ctx: Context) -> list[Finding]:
    status = obj.get("status") or {}
    ctx.part(obj, "spec", kind="DaemonSet")
    return _set_finding(
        obj,
        ctx,
        kind="DaemonSet",
        desired=int_field(status, "desiredNumberScheduled"),
        ready=int_field(status, "numberReady"),
        extra=[],
    )


CHECKS = {
    "ReplicaSet": replicaset,
    "Deployment": deployment,
    "StatefulSet": statefulset,
    "DaemonSet": daemonset,
}
