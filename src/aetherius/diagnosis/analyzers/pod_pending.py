"""Pods that do not get to run: scheduling, gates, mounts, sandboxes, stuck creation; evictions
and failing probes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aetherius.diagnosis.analyzers._crash import Cause, memory_advice, probe_text
from aetherius.diagnosis.analyzers._pod import PodView, describe_requests
from aetherius.diagnosis.context import (
    GATED_GRACE_S,
    RECENT_RESTART_S,
    STARTUP_GRACE_S,
    Context,
    event_count,
    format_quantity,
    parse_quantity,
    secret_check,
)
from aetherius.diagnosis.model import Finding, Severity
from aetherius.diagnosis.rules.kubelet import classify_mount
from aetherius.diagnosis.rules.scheduling import classify_scheduling

Obj = dict[str, Any]
_MOUNT_GRACE_S = 60.0


def _make(
    view: PodView,
    ctx: Context,
    *,
    reason: str,
    cause: Cause,
    severity: Severity,
    summary: str,
    container: str | None = None,
) -> Finding:
    return ctx.finding(
        kind="Pod",
        namespace=view.namespace,
        name=view.name,
        owner=view.owner,
        group=view.group,
        container=container,
        reason=reason,
        root_cause=cause.root_cause,
        severity=severity,
        summary=summary,
        evidence=cause.evidence,
        recommendations=cause.recommendations,
    )


def scheduling(view: PodView, ctx: Context) -> list[Finding]:
    cond = view.condition("PodScheduled")
    if cond is None or cond.get("status") != "False":
        return []
    reason = cond.get("reason")
    if reason == "SchedulingGated":
        gates = [g.get("name") for g in view.spec.get("schedulingGates") or [] if isinstance(g, dict)]
        age = ctx.age(cond.get("lastTransitionTime")) or view.age
        if age is not None and age < GATED_GRACE_S:
            return []  # NB: an unknown age is not young (no timestamps at all): no grace
        held = f"{int(age // 60)}m" if age is not None else "an unknown time (no timestamps)"
        cause = Cause(
            "SchedulingConstraint",
            "",
            [
                "status.conditions[PodScheduled].reason=SchedulingGated",
                f"spec.schedulingGates={gates}",
                f"gated for {held}",
            ],
            [
                f"The controller that owns gate(s) {', '.join(map(str, gates))} has not removed them: check that it runs (e.g. the queueing system), or remove the gate if it is stale."
            ],
        )
        return [
            _make(
                view,
                ctx,
                reason="SchedulingGated",
                cause=cause,
                severity="warning",
                summary=f"Pod is held by scheduling gate(s) {', '.join(map(str, gates))} for {held}.",
            )
        ]
    if reason != "Unschedulable":
        return []
    message = str(cond.get("message") or "")
    verdict = ctx.classified(classify_scheduling, message)
    evidence = [f"status.conditions[PodScheduled].message={message}"]
    count = event_count(view.events, "FailedScheduling")
    if count:
        evidence.append(f"event FailedScheduling x{count}")
    requests = view.requests()
    if requests:
        evidence.append(f"requests: {describe_requests(requests)}")
    recs = _scheduling_advice(view, ctx, verdict.root_cause, verdict.resources, requests)
    young = view.age is not None and view.age < STARTUP_GRACE_S
    severity: Severity = "warning" if young else "critical"
    words = _SCHEDULING_WORDS.get(verdict.root_cause, "the scheduler cannot place it")
    if verdict.root_cause == "InsufficientResources":
        words = f"no node has enough free {', '.join(dict.fromkeys(verdict.resources)) or 'capacity'}"
    elif verdict.root_cause == "SchedulingConstraint":
        # The key fact first: the label that matches no node (from the advice, which counted them).
        unmatched = next(
            (rec for rec in recs if rec.startswith("nodeSelector ") and " matches 0 " in rec), None
        )
        if unmatched:
            words = unmatched.split(": fix the selector")[0].replace(" matches 0 node(s)", " matches no node")
        spread = _one_per_node(view, ctx, verdict.constraints)
        if spread:
            words, line = spread
            evidence.append(line)
    cause = Cause(verdict.root_cause, words, evidence, recs)
    return [
        _make(
            view,
            ctx,
            reason="FailedScheduling",
            cause=cause,
            severity=severity,
            summary=f"Pod cannot be scheduled: {words}.",
        )
    ]


_SCHEDULING_WORDS = {
    "SchedulingConstraint": "no node satisfies its nodeSelector/affinity/tolerations",
    "VolumeProvisioningFailure": "its PersistentVolumeClaim is not bound",
    "MissingReference": "it references an object that does not exist",
}


def _scheduling_advice(
    view: PodView, ctx: Context, root: str, resources: list[str], requests: dict[str, float]
) -> list[str]:
    nodes = ctx.index.of_kind("Node").values()  # NB: a view, not a copy: most calls read no node
    if root in ("InsufficientResources", "SchedulingConstraint") and not ctx.index.has("Node"):
        # Nodes were not read: nothing may be said about what they offer or carry.
        return [
            f"The scheduler says: {_first_line(view)}. Compare what {view.where()} asks for with the nodes (kubectl describe nodes; kubectl get nodes --show-labels)."
        ]
    if root == "InsufficientResources":
        recs = []
        for resource in dict.fromkeys(resources):
            if resource == "pods":
                recs.append("Nodes are at their pod limit: add nodes or raise maxPods.")
                continue
            best = _largest(ctx, nodes, resource)
            memory = resource == "memory"
            asked = requests.get(resource)
            asked_text = format_quantity(asked, memory=memory) if asked is not None else "?"
            if best:
                recs.append(
                    f"Requests {resource}={asked_text} in {view.where()}; the largest node allocates {format_quantity(best, memory=memory)} of {resource}: lower the request or add nodes with more {resource} (cluster autoscaler / node pool)."
                )
            else:
                recs.append(
                    f"No node offers {resource} for a request of {asked_text}: lower the request in {view.where()} or add capable nodes."
                )
        return recs
    if root == "SchedulingConstraint":
        selector = view.spec.get("nodeSelector") or {}
        recs = []
        if isinstance(selector, dict) and selector:
            for key, value in selector.items():
                matching = sum(
                    1 for n in nodes if ((n.get("metadata") or {}).get("labels") or {}).get(key) == value
                )
                values = sorted(
                    {
                        str(((n.get("metadata") or {}).get("labels") or {}).get(key))
                        for n in nodes
                        if key in (((n.get("metadata") or {}).get("labels")) or {})
                    }
                )
                recs.append(
                    f"nodeSelector {key}={value} matches {matching} node(s)"
                    + (
                        f" (nodes have {key}={', '.join(values)})"
                        if values
                        else f" (no node has label {key})"
                    )
                    + f": fix the selector in {view.where()} or label a node."
                )
        recs.append(
            f"Check affinity and tolerations of {view.where()} against the nodes' labels and taints (kubectl get nodes --show-labels; kubectl describe node | grep Taints)."
        )
        return recs
    if root == "VolumeProvisioningFailure":
        claims = [
            v["persistentVolumeClaim"].get("claimName")
            for v in view.spec.get("volumes") or []
            if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)
        ]
        return [
            f"Bind PersistentVolumeClaim(s) {', '.join(map(str, claims))}: see the PVC finding for why it is Pending."
        ]
    return [f"Read the scheduler's message: kubectl describe pod -n {view.namespace} {view.name}"]


def _one_per_node(view: PodView, ctx: Context, constraints: list[str]) -> tuple[str, str] | None:
    """Required pod anti-affinity on the host (or a hard topology spread of skew 1 over hosts)
    needs a node per replica: (the words, the evidence) when the workload wants more replicas
    than there are nodes."""
    text = " ".join(constraints).lower()
    if "anti-affinity" not in text and "topology spread" not in text:
        return None
    affinity = (view.spec.get("affinity") or {}).get("podAntiAffinity") or {}
    required = [
        t for t in affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or () if isinstance(t, dict)
    ]
    keys = {t.get("topologyKey") for t in required}
    keys |= {
        c.get("topologyKey")
        for c in view.spec.get("topologySpreadConstraints") or ()
        if isinstance(c, dict) and c.get("whenUnsatisfiable") == "DoNotSchedule" and c.get("maxSkew") == 1
    }
    if "kubernetes.io/hostname" not in keys or view.owner is None or not ctx.index.has("Node"):
        return None
    owner = ctx.index.get(view.owner.kind, view.namespace, view.owner.name)
    replicas = ((owner or {}).get("spec") or {}).get("replicas")
    nodes = sum(
        1 for node in ctx.index.of_kind("Node").values() if not (node.get("spec") or {}).get("unschedulable")
    )
    if not isinstance(replicas, int) or replicas <= nodes:
        return None
    words = (
        f"its pods must each run on a node of their own (required anti-affinity on kubernetes.io/hostname): "
        f"{view.owner.kind} {view.owner.name} wants {replicas} replicas, the cluster has {nodes} schedulable node(s)"
    )
    return words, f"{view.owner.kind} {view.owner.name}: replicas={replicas}, schedulable nodes={nodes}"


def _first_line(view: PodView) -> str:
    cond = view.condition("PodScheduled") or {}
    message = str(cond.get("message") or "").strip().rstrip(".")
    return message.split(" preemption:")[0] if message else "no node fits"


def _largest(ctx: Context, nodes: Iterable[Obj], resource: str) -> float:
    key = f"largest-allocatable/{resource}"
    if key not in ctx.memo:
        ctx.memo[key] = max(
            (
                parse_quantity(((n.get("status") or {}).get("allocatable") or {}).get(resource)) or 0.0
                for n in nodes
            ),
            default=0.0,
        )
    value: float = ctx.memo[key]
    return value


def creating(view: PodView, ctx: Context) -> list[Finding]:
    """Scheduled but not running: mount and sandbox failures, or creation stuck past its grace."""
    if view.status.get("phase") != "Pending":
        return []
    young = view.age is not None and view.age < _MOUNT_GRACE_S
    mount = [ev for ev in view.events if ev.reason in ("FailedMount", "FailedAttachVolume")]
    if mount:
        mount.sort(key=lambda ev: ev.last, reverse=True)
        verdict = ctx.classified(classify_mount, mount[0].message)
        if young and not verdict.object_name:
            return []  # may still attach; a volume source that does not exist will not: no grace
        evidence = [ev.line() for ev in mount[:2]]
        if verdict.object_kind == "Secret":
            evidence.append(secret_check(ctx, view.namespace, verdict.object_name))
        if verdict.object_name:
            words = f"volume source {verdict.object_kind} {verdict.object_name} does not exist"
            recs = [
                f"Create {verdict.object_kind} {verdict.object_name} in namespace {view.namespace}, or fix the volume in {view.where()}."
            ]
        else:
            words = "a volume cannot be attached or mounted"
            recs = [
                "Check the volume's attachment (kubectl get volumeattachment), a Multi-Attach from another node (ReadWriteOnce used by two nodes), and the CSI driver pods on the node."
            ]
        return [
            _make(
                view,
                ctx,
                reason="FailedMount",
                cause=Cause(verdict.root_cause, words, evidence, recs),
                severity="critical",
                summary=f"Pod cannot start: {words}.",
            )
        ]
    sandbox = [ev for ev in view.events if ev.reason == "FailedCreatePodSandBox"]
    if sandbox and not young:
        message = sandbox[-1].message
        exhausted = re.search(
            r"no IP addresses available|failed to allocate for range|IP pool", message, re.I
        )
        root = "InsufficientResources" if exhausted else "NodeFailure"
        node = view.spec.get("nodeName") or "?"
        recs = (
            ["The pod network ran out of addresses: enlarge the pod CIDR/IP pool or free addresses."]
            if exhausted
            else [
                f"The CNI plugin on node {node} fails: check the CNI daemon pods (calico/cilium/aws-node) on that node and their logs."
            ]
        )
        return [
            _make(
                view,
                ctx,
                reason="FailedCreatePodSandBox",
                cause=Cause(root, "", [sandbox[-1].line()], recs),
                severity="critical",
                summary=f"The pod sandbox (network) cannot be created on node {node}.",
            )
        ]
    if view.age is not None and view.age < STARTUP_GRACE_S:
        return []
    stuck = [
        cs
        for cs in view.statuses("containerStatuses")
        if ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        in ("ContainerCreating", "PodInitializing")
    ]
    if not stuck:
        return []
    stuck_for = (
        f"{int(view.age // 60)}m" if view.age is not None else "an unknown time (no creationTimestamp)"
    )
    evidence = [
        f"state.waiting.reason=ContainerCreating for {stuck_for}",
        "no FailedMount/FailedCreatePodSandBox/Failed event explains it",
        *unchecked_volume_sources(view, ctx),
    ]
    recs = [
        f"Look at the node's kubelet and runtime: kubectl describe pod -n {view.namespace} {view.name}; journalctl -u kubelet on node {view.spec.get('nodeName', '?')}."
    ]
    return [
        _make(
            view,
            ctx,
            reason="CreateContainerError",
            cause=Cause("Unknown", "", evidence, recs),
            severity="warning",
            container=stuck[0]["name"],
            summary=f"Pod is stuck in ContainerCreating for {stuck_for} with no event saying why.",
        )
    ]


def unchecked_volume_sources(view: PodView, ctx: Context) -> list[str]:
    """Evidence on the ConfigMaps and Secrets the pod's volumes name: missing, or not checked."""
    lines = []
    for volume in view.spec.get("volumes") or ():
        if not isinstance(volume, dict):
            continue
        for kind, key, field in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
            source = volume.get(key)
            if not isinstance(source, dict) or not isinstance(source.get(field), str):
                continue
            name = source[field]
            if kind == "Secret":
                lines.append(f"volume {volume.get('name')}: {secret_check(ctx, view.namespace, name)}")
            elif not ctx.index.has(kind):
                lines.append(
                    f"volume {volume.get('name')} → ConfigMap {name}: not checked (the state holds no "
                    f"ConfigMaps): kubectl get configmap -n {view.namespace} {name}"
                )
            elif ctx.index.get(kind, view.namespace, name) is None and not source.get("optional"):
                lines.append(f"volume {volume.get('name')} → ConfigMap {name}: no such ConfigMap")
    return lines


def liveness_failures(view: PodView) -> int:
    return event_count(view.events, "Unhealthy", "Liveness probe failed")


def probes(view: PodView, ctx: Context) -> list[Finding]:
    unhealthy = [ev for ev in view.events if ev.reason == "Unhealthy"]
    if not unhealthy or view.status.get("phase") != "Running":
        return []
    ready = view.condition("Ready")
    not_ready = ready is not None and ready.get("status") == "False"
    liveness = [ev for ev in unhealthy if ev.message.startswith("Liveness")]
    restarted = any(
        isinstance((cs.get("lastState") or {}).get("terminated"), dict)
        and (ctx.age(cs["lastState"]["terminated"].get("finishedAt")) or 1e9) < RECENT_RESTART_S
        for cs in view.statuses("containerStatuses")
    )
    if not (not_ready or (liveness and restarted)):
        return []
    latest = max(unhealthy, key=lambda ev: ev.last)
    probe_kind = latest.message.split(" ", 1)[0].lower()  # readiness | liveness | startup
    container = _probed_container(view, ctx, f"{probe_kind}Probe")
    spec = view.containers.get(container or "", {}).get(f"{probe_kind}Probe") or {}
    evidence = [
        f"event Unhealthy x{sum(ev.count for ev in unhealthy)}: {latest.message}",
        f"{probe_kind}Probe: {probe_text(spec)}",
    ]
    if not_ready:
        evidence.insert(0, "status.conditions[Ready]=False")
    kills = event_count(view.events, "Killing", "failed liveness probe")
    restarts = next(
        (cs.get("restartCount") for cs in view.statuses("containerStatuses") if cs["name"] == container), None
    )
    if probe_kind == "liveness" and isinstance(restarts, int) and restarts:
        evidence.append(
            f"restartCount={restarts}"
            + (f", event Killing x{kills} (failed liveness probe)" if kills else "")
        )
    mismatch = _port_mismatch(view.containers.get(container or "", {}), spec)
    if mismatch:
        evidence.append(mismatch[1])
    message = latest.message.lower()
    if mismatch:
        hint = f"it probes port {mismatch[0]}, which no port of the container declares: point the probe at the port the app listens on"
    elif "connection refused" in message:
        hint = (
            "nothing listens on the probed port: check the probe's port against the port the app listens on"
        )
    elif "statuscode" in message:
        hint = "the endpoint answers with an error status: check the path and what the app reports"
    elif "timeout" in message or "deadline" in message:
        hint = f"the app answers too slowly: raise timeoutSeconds (now {spec.get('timeoutSeconds', 1)}s) or fix the slow handler"
    else:
        hint = "check the probe command and what it checks"
    cause = Cause(
        "ProbeFailure",
        "",
        evidence,
        [f"The {probe_kind} probe of {container or 'the container'} in {view.where()} fails: {hint}."],
    )
    return [
        _make(
            view,
            ctx,
            reason="Unhealthy",
            cause=cause,
            severity="warning",
            container=container,
            summary=f"The {probe_kind} probe of container {container} fails"
            + (f" (it probes port {mismatch[0]}, which the container does not declare)" if mismatch else "")
            + f", so the pod is {'not ready' if not_ready else 'restarted'}"
            + (
                f" ({restarts} restarts)."
                if probe_kind == "liveness" and isinstance(restarts, int) and restarts
                else "."
            ),
        )
    ]


def _probed_container(view: PodView, ctx: Context, probe_key: str) -> str | None:
    """The container the failing probe belongs to: not ready, else restarted lately, else probed."""
    statuses = view.statuses("containerStatuses")
    for cs in statuses:
        if not cs.get("ready") and probe_key in view.containers.get(cs["name"], {}):
            return str(cs["name"])
    for cs in statuses:
        last = (cs.get("lastState") or {}).get("terminated")
        if isinstance(last, dict) and (ctx.age(last.get("finishedAt")) or 1e9) < RECENT_RESTART_S:
            return str(cs["name"])
    probed = [name for name, spec in view.containers.items() if probe_key in spec]
    return probed[0] if probed else next((str(cs["name"]) for cs in statuses), None)


def _port_mismatch(container: Obj, probe: Obj) -> tuple[str, str] | None:
    """(port, evidence) when the probe asks a port that no declared container port matches.

    NB: only when the container declares ports at all: many images listen on undeclared ports.
    """
    action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
    ports = [p for p in container.get("ports") or () if isinstance(p, dict)]
    if not isinstance(action, dict) or not ports or "port" not in action:
        return None
    port = action["port"]
    declared = {p.get("containerPort") for p in ports} | {p.get("name") for p in ports if p.get("name")}
    if port in declared or (isinstance(port, str) and port.isdigit() and int(port) in declared):
        return None
    listed = ", ".join(str(p.get("containerPort")) for p in ports)
    return str(port), f"probe port {port} is not a declared container port (containerPorts: {listed})"


_EVICT = re.compile(r"Container (\S+) was using (\S+), request is (\S+)")


def evicted(view: PodView, ctx: Context) -> list[Finding]:
    message = str(view.status.get("message") or "")
    evidence = ["status.reason=Evicted", f"status.message={message}"]
    memory = "resource: memory" in message
    match = _EVICT.search(message)
    if memory:
        root = "OutOfMemory"
        recs = (
            [
                f"Container {match.group(1)} used {match.group(2)} with a request of {match.group(3)}: raise resources.requests.memory in {view.where()} toward its real usage so the scheduler reserves it."
            ]
            if match
            else memory_advice(view, next(iter(view.containers), ""))[1]
        )
    else:
        root = "NodeFailure"
        recs = [
            f"Node {view.spec.get('nodeName', '?')} was under pressure ({message.split('.')[0]}): free disk/ephemeral storage or set ephemeral-storage requests/limits."
        ]
    cause = Cause(root, "", evidence, recs)
    return [
        _make(
            view,
            ctx,
            reason="Evicted",
            cause=cause,
            severity="warning",
            summary=f"Pod was evicted from node {view.spec.get('nodeName', '?')}: {message.split('.')[0] or 'node pressure'}.",
        )
    ]
