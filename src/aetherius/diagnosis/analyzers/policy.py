"""NetworkPolicy, admission webhook and ResourceQuota analyzers: the cluster-wide rules that make
otherwise healthy workloads fail."""

from __future__ import annotations

from typing import Any

from aetherius.diagnosis.context import Context, parse_quantity
from aetherius.diagnosis.index import meta
from aetherius.diagnosis.model import Finding, Severity

Obj = dict[str, Any]


def network_policy(obj: Obj, ctx: Context) -> list[Finding]:
    metadata = meta(obj)
    spec = obj.get("spec") or {}
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    selector = (spec.get("podSelector") or {}).get("matchLabels") or {}
    if not selector or (spec.get("podSelector") or {}).get("matchExpressions"):
        return []  # an empty selector selects every pod; expressions are not evaluated here
    if ctx.index.pods_matching(namespace, selector):
        return []
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
    hints = [
        f"pods in {namespace} have {k}={', '.join(v)}"
        for k in sorted(selector)
        if (v := ctx.index.label_values(namespace, str(k)))
    ]
    return [
        ctx.finding(
            kind="NetworkPolicy",
            namespace=namespace,
            name=name,
            reason="NetworkPolicyNoMatch",
            root_cause="SelectorMismatch",
            severity="warning",
            summary=f"NetworkPolicy {name} selects no pod ({wanted}): the isolation it was written for is not applied.",
            evidence=[f"spec.podSelector.matchLabels={wanted}", "0 pods match", *hints],
            recommendations=[
                f"Fix spec.podSelector of NetworkPolicy {name} to the labels of the pods it should isolate."
            ],
        )
    ]


def _ready(ctx: Context, namespace: str, name: str) -> int | None:
    endpoints = ctx.index.get("Endpoints", namespace, name)
    if endpoints is None:
        return None
    return sum(len(s.get("addresses") or []) for s in endpoints.get("subsets") or [] if isinstance(s, dict))


def webhook_config(obj: Obj, ctx: Context) -> list[Finding]:
    metadata = meta(obj)
    config_name = str(metadata["name"])
    kind = str(obj.get("kind") or "ValidatingWebhookConfiguration")
    for hook in obj.get("webhooks") or ():
        if not isinstance(hook, dict):
            continue
        service = (hook.get("clientConfig") or {}).get("service")
        if not isinstance(service, dict):
            continue
        ns, svc = str(service.get("namespace") or ""), str(service.get("name") or "")
        policy = str(hook.get("failurePolicy") or "Fail")
        severity: Severity = "critical" if policy == "Fail" else "warning"
        hook_name = str(hook.get("name") or "")
        refusals = [
            ev
            for evs in ctx.index.events_by_ns.values()
            for ev in evs
            if ev.reason == "FailedCreate" and hook_name and hook_name in ev.message
        ][:2]
        evidence = [f"webhooks[{hook_name}].clientConfig.service={ns}/{svc} failurePolicy={policy}"] + [
            ev.line() for ev in refusals
        ]
        effect = "every matching create/update is refused" if policy == "Fail" else "its checks are skipped"
        if ctx.index.has("Service") and ctx.index.get("Service", ns, svc) is None:
            return [
                ctx.finding(
                    kind=kind,
                    namespace="",
                    name=config_name,
                    reason="WebhookUnavailable",
                    root_cause="MissingReference",
                    severity=severity,
                    summary=f"Webhook {hook_name} calls Service {ns}/{svc}, which does not exist: {effect}.",
                    evidence=[*evidence, f"Service {ns}/{svc}: not found"],
                    recommendations=[
                        f"Reinstall the webhook's server (Service {ns}/{svc}) or delete the stale {kind} {config_name}."
                    ],
                )
            ]
        ready = _ready(ctx, ns, svc)
        if ready == 0 or refusals:
            return [
                ctx.finding(
                    kind=kind,
                    namespace="",
                    name=config_name,
                    reason="WebhookUnavailable",
                    root_cause="DependencyUnavailable",
                    severity=severity,
                    summary=f"Webhook {hook_name} has no ready backend (Service {ns}/{svc}): {effect}.",
                    evidence=[*evidence, f"Service {ns}/{svc} ready endpoints: {ready}"],
                    recommendations=[
                        f"Fix the pods behind Service {ns}/{svc} (see their findings); if the webhook is optional set failurePolicy: Ignore."
                    ],
                )
            ]
    return []


def resource_quota(obj: Obj, ctx: Context) -> list[Finding]:
    metadata = meta(obj)
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    status = obj.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    full = []
    for resource, limit in hard.items():
        limit_q, used_q = parse_quantity(limit), parse_quantity(used.get(resource, "0"))
        if limit_q is not None and used_q is not None and limit_q > 0 and used_q >= limit_q:
            full.append(f"{resource}: used {used.get(resource)} of {limit}")
    refusals = [
        ev for ev in ctx.index.events_by_ns.get(namespace, []) if "exceeded quota: " + name in ev.message
    ]
    if not full and not refusals:
        return []
    evidence = [f"status {item}" for item in full] + [ev.line() for ev in refusals[:2]]
    refused = f" and refused {sum(ev.count for ev in refusals)} create(s)" if refusals else ""
    return [
        ctx.finding(
            kind="ResourceQuota",
            namespace=namespace,
            name=name,
            reason="QuotaExceeded",
            root_cause="QuotaExceeded",
            severity="critical" if refusals else "warning",
            summary=f"ResourceQuota {name} is exhausted ({'; '.join(full) or 'see events'}){refused}.",
            evidence=evidence,
            recommendations=[
                f"Raise spec.hard of ResourceQuota {name} for {', '.join(i.split(':')[0] for i in full) or 'the refused resource'}, or lower the requests/limits of the workloads in {namespace}."
            ],
        )
    ]


CHECKS = {
    "NetworkPolicy": network_policy,
    "ValidatingWebhookConfiguration": webhook_config,
    "MutatingWebhookConfiguration": webhook_config,
    "ResourceQuota": resource_quota,
}
