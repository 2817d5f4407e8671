"""Follow a finding to the first broken thing: causal links between findings of one scan.

The analyzers each answer for one object; this pass connects them, the way an on-call engineer
does: ``orders`` crash-loops on ``connection refused`` to ``postgres:5432`` → Service ``postgres``
has no ready endpoints → its pod ``postgres-0`` is OOMKilled. Each link is set on the downstream
finding (``caused_by``) with the hop in words (``chain``), so ten pods failing because one database
is down read as one problem with its root.

Links, each from what the state says (never from a guess):

- a host a log could not reach (``svc``, ``svc.ns``, ``svc.ns.svc.cluster.local``, a ClusterIP) →
  its Service → the Service's finding, or the finding of a pod it selects;
- a Service without ready endpoints → the finding of the pods (or workload) it selects;
- a workload roll-up → the pod finding it rolls up;
- a pod waiting for its claim → the PersistentVolumeClaim's finding;
- a pod evicted or failing on a node → the Node's finding.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from aetherius.diagnosis.analyzers.service import workload_selected
from aetherius.diagnosis.context import Context
from aetherius.diagnosis.index import Malformed, pod_name
from aetherius.diagnosis.model import SEVERITY_RANK, Finding
from aetherius.diagnosis.rules.logs import dependency_target
from aetherius.diagnosis.rules.netpol import admits, isolates
from aetherius.gateway.decode import PlainPod

__all__ = ["link_findings", "log_target", "root_of", "service_named", "upstream_of"]

Key = tuple[str, str, str]  # kind, namespace, name
_ROLLUPS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
_CLUSTER_DOMAIN = ".svc.cluster.local"


def link_findings(findings: list[Finding], ctx: Context) -> None:
    """Set ``caused_by`` and ``chain`` on every finding whose cause is another finding."""
    by_object: dict[Key, list[Finding]] = {}
    by_key: dict[tuple[str, str, str, str], Finding] = {}
    for finding in findings:
        by_object.setdefault((finding.kind, finding.namespace, finding.name), []).append(finding)
        by_key[finding.key()] = finding
    for finding in findings:
        if finding.caused_by is not None:
            continue
        try:
            upstream, hop = _upstream(finding, ctx, by_object)
        except (Malformed, TypeError, ValueError, AttributeError) as exc:
            # NB: the finding stands; only its link is not followed (an object on the way is malformed).
            ctx.warnings.append(
                f"{finding.kind} {finding.namespace}/{finding.name}: cause not followed: malformed "
                f"({type(exc).__name__}: {exc})"
            )
            continue
        if upstream is not None and upstream is not finding and not _reaches(upstream, finding, by_key):
            finding.caused_by = upstream.link()
            finding.chain.append(ctx.scrub(hop))
        elif hop:
            # What the hop found instead of a failing object (a policy in the way, a Service in
            # another namespace): the key fact, so the summary says it too.
            finding.chain.append(ctx.scrub(hop))
            finding.summary = f"{finding.summary.rstrip('.')}: {ctx.scrub(hop.split(': ', 1)[-1])}."


class Linked(Protocol):
    """A finding as both the engine's and a stored report's carry it (``caused_by``, ``key()``)."""

    @property
    def caused_by(self) -> Any: ...

    def key(self) -> tuple[str, str, str, str]: ...


L = TypeVar("L", bound=Linked)


def upstream_of(finding: L, by_key: Mapping[tuple[str, str, str, str], L]) -> list[L]:
    """The findings ``finding``'s chain passes through, nearest first (cycles stop)."""
    out: list[L] = []
    seen = {finding.key()}
    current = finding
    while current.caused_by is not None:
        link = current.caused_by
        upstream = by_key.get((link.kind, link.namespace, link.name, link.reason))
        if upstream is None or upstream.key() in seen:
            break
        seen.add(upstream.key())
        out.append(upstream)
        current = upstream
    return out


def root_of(finding: L, by_key: Mapping[tuple[str, str, str, str], L]) -> L:
    """The deepest finding of ``finding``'s chain (itself when it is a root); cycles stop."""
    chain = upstream_of(finding, by_key)
    return chain[-1] if chain else finding


def _reaches(start: Finding, target: Finding, by_key: dict[tuple[str, str, str, str], Finding]) -> bool:
    seen: set[tuple[str, str, str, str]] = set()
    current: Finding | None = start
    while current is not None and current.caused_by is not None and current.key() not in seen:
        seen.add(current.key())
        link = current.caused_by
        if (link.kind, link.namespace, link.name, link.reason) == target.key():
            return True
        current = by_key.get((link.kind, link.namespace, link.name, link.reason))
    return False


def _upstream(
    finding: Finding, ctx: Context, by_object: dict[Key, list[Finding]]
) -> tuple[Finding | None, str]:
    if finding.kind in _ROLLUPS:
        return _rolled_up(finding, ctx)
    if finding.kind == "Ingress" and finding.reason == "IngressBackendUnavailable":
        return _ingress_backend(finding, by_object)
    if finding.kind == "Service" and finding.reason == "ServiceNoEndpoints":
        return _behind_service(ctx, finding.namespace, finding.name, by_object, exclude=finding)
    if finding.kind == "Pod":
        if finding.root_cause == "DependencyUnavailable":
            return _dependency(finding, ctx, by_object)
        if finding.root_cause == "VolumeProvisioningFailure":
            return _claim(finding, ctx, by_object)
        if finding.root_cause in ("NodeFailure", "OutOfMemory") or finding.reason == "Evicted":
            return _node(finding, ctx, by_object)
    return None, ""


def _ingress_backend(finding: Finding, by_object: dict[Key, list[Finding]]) -> tuple[Finding | None, str]:
    service = next((line.split("→ service ", 1)[1] for line in finding.evidence if "→ service " in line), "")
    upstream = _worst(by_object.get(("Service", finding.namespace, service), []))
    if upstream is None:
        return None, ""
    return upstream, f"Ingress {finding.name} → Service {finding.namespace}/{service}: {upstream.summary}"


def _worst(findings: Iterable[Finding]) -> Finding | None:
    ranked = sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.kind != "Pod", f.name, f.reason))
    return ranked[0] if ranked else None


def _rolled_up(finding: Finding, ctx: Context) -> tuple[Finding | None, str]:
    members = [
        f
        for f in ctx.by_group.get(finding.group, [])
        if f is not finding and f.kind in ("Pod", "ReplicaSet", "Job") and f.root_cause == finding.root_cause
    ]
    first = min(members, key=lambda f: (f.kind != "Pod", f.name, f.container or ""), default=None)
    if first is None:
        return None, ""
    return first, f"{finding.kind} {finding.name} ← {first.kind} {first.name}: {first.summary}"


def _behind_service(
    ctx: Context, namespace: str, name: str, by_object: dict[Key, list[Finding]], *, exclude: Finding | None
) -> tuple[Finding | None, str]:
    """The finding of what a Service sends traffic to: its pods', else its workload's."""
    service = ctx.index.get("Service", namespace, name)
    selector = ((service or {}).get("spec") or {}).get("selector")
    if not isinstance(selector, dict) or not selector:
        return None, ""
    candidates: list[Finding] = []
    for pod in ctx.index.pods_matching(namespace, selector):
        pod_ns, pod_nm = pod_name(pod)
        candidates += [f for f in by_object.get(("Pod", pod_ns, pod_nm), []) if f is not exclude]
    found = _worst(candidates)
    if found is None:
        return None, ""
    return found, f"Service {namespace}/{name} sends traffic to pod {found.name}: {found.summary}"


def service_named(target: str, namespace: str) -> tuple[str, str] | str | None:
    """What a host[:port] names, seen from ``namespace``: a Service's (namespace, name), a bare
    address (str, to match against ClusterIPs), or None (an external name)."""
    host = target.rsplit(":", 1)[0] if target.count(":") == 1 else target
    host = host.strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    if host.endswith(_CLUSTER_DOMAIN):
        host = host[: -len(_CLUSTER_DOMAIN)]
    elif host.endswith(".svc"):
        host = host[: -len(".svc")]
    parts = host.split(".")
    if len(parts) == 1:
        return namespace, parts[0]
    if len(parts) == 2:
        return parts[1], parts[0]
    return None


def log_target(finding: Finding) -> str:
    """The host[:port] the log lines quoted in a finding's evidence could not reach ("" if none)."""
    lines = [line.split(": ", 1)[1] for line in finding.evidence if line.startswith("log (") and ": " in line]
    return dependency_target(lines) if finding.root_cause == "DependencyUnavailable" else ""


def _resolve(ctx: Context, target: str, namespace: str) -> tuple[str, str] | None:
    """The (namespace, name) of the Service a host[:port] names, when the state holds it."""
    named = service_named(target, namespace)
    if isinstance(named, str):
        return _by_cluster_ip(ctx).get(named)
    if named is not None and ctx.index.get("Service", named[0], named[1]) is not None:
        return named
    return None


def _by_cluster_ip(ctx: Context) -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] | None = ctx.memo.get("services_by_cluster_ip")
    if table is None:
        table = {}
        for (namespace, name), service in ctx.index.of_kind("Service").items():
            ip = (service.get("spec") or {}).get("clusterIP")
            if isinstance(ip, str) and ip and ip != "None":
                table[ip] = (namespace, name)
        ctx.memo["services_by_cluster_ip"] = table
    return table


def _elsewhere(ctx: Context, name: str, namespace: str) -> list[str]:
    return sorted(ns for (ns, nm) in ctx.index.of_kind("Service") if nm == name and ns != namespace)


def _dependency(
    finding: Finding, ctx: Context, by_object: dict[Key, list[Finding]]
) -> tuple[Finding | None, str]:
    target = log_target(finding)
    if not target:
        return None, ""
    resolved = _resolve(ctx, target, finding.namespace)
    if resolved is None:
        host = target.rsplit(":", 1)[0].split(".")[0]
        if "." not in target.rsplit(":", 1)[0] and ctx.index.has("Service"):
            others = _elsewhere(ctx, host, finding.namespace)
            if others:
                return None, (
                    f"{target}: no Service {host} in namespace {finding.namespace}; Service {host} exists in "
                    f"namespace {', '.join(others)}: call it {host}.{others[0]}"
                )
        return None, ""
    namespace, name = resolved
    service_findings = [f for f in by_object.get(("Service", namespace, name), []) if f is not finding]
    if service_findings:
        upstream = service_findings[0]
        return upstream, f"{target} is Service {namespace}/{name}: {upstream.summary}"
    found, hop = _behind_service(ctx, namespace, name, by_object, exclude=finding)
    if found is None:
        return None, _idle_service(ctx, target, namespace, name) or _refused_by_policy(
            ctx, finding, target, namespace, name
        )
    return found, f"{target} is Service {namespace}/{name}; {hop}"


def _refused_by_policy(ctx: Context, finding: Finding, target: str, namespace: str, name: str) -> str:
    """A NetworkPolicy that isolates the Service's pods and admits nothing from the client."""
    service = ctx.index.get("Service", namespace, name)
    selector = ((service or {}).get("spec") or {}).get("selector")
    client = ctx.index.get("Pod", finding.namespace, finding.name)
    if not isinstance(selector, dict) or not selector or client is None:
        return ""
    backends = ctx.index.pods_matching(namespace, selector)
    if not backends:
        return ""
    backend = backends[0]
    labels = (
        backend.metadata.labels
        if isinstance(backend, PlainPod)
        else (backend.get("metadata") or {}).get("labels")
    )
    labels = labels if isinstance(labels, dict) else {}
    client_labels = (client.get("metadata") or {}).get("labels") or {}
    ns_object = ctx.index.get("Namespace", "", finding.namespace)
    ns_labels = {
        "kubernetes.io/metadata.name": finding.namespace,
        **(((ns_object or {}).get("metadata") or {}).get("labels") or {}),
    }
    isolating = [
        policy
        for (policy_ns, _), policy in ctx.index.of_kind("NetworkPolicy").items()
        if policy_ns == namespace and isolates(policy, labels)
    ]
    if not isolating:
        return ""
    verdicts = [
        admits(p, client_namespace=finding.namespace, client_labels=client_labels, namespace_labels=ns_labels)
        for p in isolating
    ]
    if any(v is not False for v in verdicts):
        return ""  # one admits it (or an ipBlock rule may): not the policies
    names = ", ".join(sorted(str((p.get("metadata") or {}).get("name")) for p in isolating))
    return (
        f"{target} is Service {namespace}/{name}: NetworkPolicy {names} selects its pods and admits "
        f"nothing from pod {finding.namespace}/{finding.name}"
    )


def _idle_service(ctx: Context, target: str, namespace: str, name: str) -> str:
    """Why a Service nothing failing stands behind has no endpoint, when the state says it: its
    workload is scaled to zero, or nothing it selects exists ("" when it has pods)."""
    service = ctx.index.get("Service", namespace, name)
    selector = ((service or {}).get("spec") or {}).get("selector")
    if not isinstance(selector, dict) or not selector or ctx.index.pods_matching(namespace, selector):
        return ""
    workload = workload_selected(ctx, namespace, selector)
    if workload is not None and workload[2] == 0:
        return f"{target} is Service {namespace}/{name}: no endpoint, {workload[0]} {workload[1]} is scaled to 0 replicas"
    if workload is None:
        wanted = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return (
            f"{target} is Service {namespace}/{name}: no endpoint, no pod in {namespace} has labels {wanted}"
        )
    return ""


def _claim(finding: Finding, ctx: Context, by_object: dict[Key, list[Finding]]) -> tuple[Finding | None, str]:
    pod = ctx.index.get("Pod", finding.namespace, finding.name)
    volumes: Any = ((pod or {}).get("spec") or {}).get("volumes") or ()
    for volume in volumes:
        claim = (volume or {}).get("persistentVolumeClaim") if isinstance(volume, dict) else None
        name = claim.get("claimName") if isinstance(claim, dict) else None
        for upstream in by_object.get(("PersistentVolumeClaim", finding.namespace, str(name)), []):
            return upstream, f"claim {name}: {upstream.summary}"
    return None, ""


def _node(finding: Finding, ctx: Context, by_object: dict[Key, list[Finding]]) -> tuple[Finding | None, str]:
    pod = ctx.index.get("Pod", finding.namespace, finding.name)
    node = ((pod or {}).get("spec") or {}).get("nodeName")
    if not isinstance(node, str):
        return None, ""
    upstream = _worst(by_object.get(("Node", "", node), []))
    if upstream is None:
        return None, ""
    if finding.root_cause == "OutOfMemory" and "memory" not in upstream.summary:
        return None, ""  # a container at its own limit is not the node's fault
    return upstream, f"node {node}: {upstream.summary}"
