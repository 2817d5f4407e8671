"""Ingress analyzer: an IngressClass that does not exist, a backend Service or port that does not
exist, a TLS Secret that does not exist: checked against Secrets' metadata when the state has it
(a snapshot; live with metadata-only Secret reads on), otherwise from the controller's events on
the Ingress (``secret "x" not found``), and the finding says the existence was not checked."""

from __future__ import annotations

import re
from typing import Any

from aetherius.diagnosis.context import SECRETS_NOT_CHECKED, Context, unchecked
from aetherius.diagnosis.index import meta, section
from aetherius.diagnosis.model import Finding

Obj = dict[str, Any]

_SECRET_NOT_FOUND = re.compile(r'secrets? "?(?:[\w.-]+/)?([\w.-]+)"? (?:was )?not found', re.I)


def _backends(spec: Obj) -> list[tuple[str, Obj]]:
    out = []
    default = spec.get("defaultBackend")
    if isinstance(default, dict) and isinstance(default.get("service"), dict):
        out.append(("defaultBackend", default["service"]))
    for rule in spec.get("rules") or ():
        for path in ((rule or {}).get("http") or {}).get("paths") or ():
            service = ((path or {}).get("backend") or {}).get("service")
            if isinstance(service, dict):
                out.append((f"{(rule or {}).get('host', '*')}{path.get('path', '/')}", service))
    return out


def ingress(obj: Obj, ctx: Context) -> list[Finding]:
    metadata, spec = meta(obj), section(obj, "spec")
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    problems: list[tuple[str, str]] = []  # (evidence, recommendation)
    class_name = spec.get("ingressClassName") or (metadata.get("annotations") or {}).get(
        "kubernetes.io/ingress.class"
    )
    if ctx.index.has("IngressClass"):
        classes = sorted(n for _, n in ctx.index.of_kind("IngressClass"))
        if isinstance(class_name, str) and class_name not in classes:
            problems.append(
                (
                    f"ingressClassName={class_name}: no such IngressClass (exist: {', '.join(classes) or 'none'})",
                    f"Set ingressClassName to one of {', '.join(classes) or '(none: install an ingress controller)'}.",
                )
            )
    backends = _backends(spec)
    if backends and not ctx.index.has("Service"):
        return [_unverified(ctx, namespace, name, sorted({str(b.get("name")) for _, b in backends}))]
    for where, backend in backends:
        svc_name = str(backend.get("name"))
        svc = ctx.index.get("Service", namespace, svc_name)
        if svc is None:
            if ctx.index.has("Service"):
                problems.append(
                    (
                        f"{where} → service {svc_name}: no such Service",
                        f"Create Service {svc_name} or point {where} at an existing one.",
                    )
                )
            continue
        port = backend.get("port") or {}
        ports = [p for p in (svc.get("spec") or {}).get("ports") or [] if isinstance(p, dict)]
        wanted = port.get("number") if isinstance(port, dict) else None
        wanted_name = port.get("name") if isinstance(port, dict) else None
        if wanted is not None and all(p.get("port") != wanted for p in ports):
            problems.append(
                (
                    f"{where} → service {svc_name} port {wanted}: the Service exposes {[p.get('port') for p in ports]}",
                    f"Use one of the ports Service {svc_name} exposes.",
                )
            )
        elif wanted_name is not None and all(p.get("name") != wanted_name for p in ports):
            problems.append(
                (
                    f"{where} → service {svc_name} port {wanted_name!r}: no port of that name",
                    f"Use one of the port names of Service {svc_name}: {[p.get('name') for p in ports]}.",
                )
            )
    tls_secrets = [
        secret
        for tls in spec.get("tls") or ()
        if isinstance(secret := (tls or {}).get("secretName"), str) and secret
    ]
    checked = ctx.index.has("Secret")
    reported: dict[str, str] = {} if checked else _secrets_reported_missing(ctx, namespace, name)
    for secret in tls_secrets:
        if checked and ctx.index.get("Secret", namespace, secret) is None:
            evidence = f"tls secretName={secret}: no such Secret"
        elif secret in reported:
            evidence = f"tls secretName={secret}: {reported[secret]}"
        else:
            continue
        problems.append(
            (
                evidence,
                f"Create the TLS Secret {secret} (kubernetes.io/tls) in {namespace}, or let cert-manager issue it.",
            )
        )
    if not problems:
        return _backend_unavailable(ctx, namespace, name, backends)
    if tls_secrets and not checked:
        problems.append((SECRETS_NOT_CHECKED, ""))
    return [
        ctx.finding(
            kind="Ingress",
            namespace=namespace,
            name=name,
            reason="IngressMisconfigured",
            root_cause="MissingReference",
            severity="critical" if any("service" in e for e, _ in problems) else "warning",
            summary=f"Ingress {name} points at what does not exist: {problems[0][0]}.",
            evidence=[e for e, _ in problems],
            recommendations=[r for _, r in problems if r],
        )
    ]


def _backend_unavailable(
    ctx: Context, namespace: str, name: str, backends: list[tuple[str, Obj]]
) -> list[Finding]:
    """Every backend exists but one has no ready endpoint: requests to it get 503 at the
    controller. The cause is the Service's (and its pods'): the chain links there."""
    for where, backend in backends:
        service = str(backend.get("name"))
        failing = [
            f
            for f in ctx.by_group.get(f"Service/{namespace}/{service}", [])
            if f.kind == "Service" and f.reason == "ServiceNoEndpoints"
        ]
        if not failing:
            continue
        cause = failing[0]
        return [
            ctx.finding(
                kind="Ingress",
                namespace=namespace,
                name=name,
                reason="IngressBackendUnavailable",
                root_cause=cause.root_cause,
                severity="critical",
                summary=f"Ingress {name} routes {where} to Service {service}, which has no ready endpoint: "
                "clients get 503 from the ingress controller.",
                evidence=[f"{where} → service {service}", f"Service {service}: {cause.summary}"],
                recommendations=cause.recommendations[:2],
            )
        ]
    return []


def _unverified(ctx: Context, namespace: str, name: str, services: list[str]) -> Finding:
    """The Ingress's backends could not be checked: the state holds no Services (a partial snapshot,
    a refused read). Said at warning instead of silence; never called missing."""
    return ctx.finding(
        kind="Ingress",
        namespace=namespace,
        name=name,
        reason="UnverifiedReference",
        root_cause="Unknown",
        severity="warning",
        summary=f"Ingress {name} routes to Service(s) {', '.join(services)}, which could not be checked.",
        evidence=[unchecked("Service", namespace, service) for service in services],
        recommendations=[
            f"Check the backends exist and have endpoints: kubectl get service,endpointslice -n {namespace}; "
            "or capture the snapshot with Services (aetherius snapshot reads every kind)."
        ],
    )


def _secrets_reported_missing(ctx: Context, namespace: str, name: str) -> dict[str, str]:
    """Secret name -> the event line of an ingress controller saying it does not exist."""
    found: dict[str, str] = {}
    for ev in ctx.index.events("Ingress", namespace, name):
        if ev.type != "Warning":
            continue
        for match in _SECRET_NOT_FOUND.finditer(ev.message):
            found.setdefault(match.group(1), ev.line())
    return found


CHECKS = {"Ingress": ingress}
