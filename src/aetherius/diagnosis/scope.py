"""``diagnose_object``: one object and what it depends on, read with a handful of targeted calls.

The orchestrator diagnoses one incident at a time; listing the whole cluster for it would be
wasteful. For a pod: the pod, its events, its owner chain, its node, the claims it mounts and the
StorageClasses, the ConfigMaps it references and (with metadata-only Secret reads on) its Secrets,
read at once. For a workload: it, its ReplicaSets and pods (by its selector), their
events (one namespace LIST). The same analyzers then run over that small state.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aetherius.diagnosis.chains import log_target, service_named, upstream_of
from aetherius.diagnosis.context import Context, LogText
from aetherius.diagnosis.engine import analyze_state, new_scan_id, order
from aetherius.diagnosis.index import Index, group_of
from aetherius.diagnosis.logplan import read_logs
from aetherius.diagnosis.model import DiagnosisResult, Finding
from aetherius.gateway import BackendError, ExecutionGateway

__all__ = ["MAX_REFERENCES", "config_references", "diagnose_object"]

Obj = dict[str, Any]
_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")


MAX_REFERENCES = 20  # ConfigMaps, and Secrets, read for one pod; more is unusual (warned, counted)


def _dicts(value: Any) -> list[Obj]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def config_references(spec: Obj) -> tuple[list[str], list[str]]:
    """The ConfigMap and the Secret names a pod spec references, de-duplicated, in spec order.

    From the env (``valueFrom``) and ``envFrom`` of init and regular containers, the volumes
    (``configMap``, ``secret``, ``projected`` sources) and the ``imagePullSecrets``.
    """
    configmaps: dict[str, None] = {}
    secrets: dict[str, None] = {}

    def add(into: dict[str, None], name: Any) -> None:
        if isinstance(name, str) and name:
            into[name] = None

    for container in _dicts(spec.get("initContainers")) + _dicts(spec.get("containers")):
        for var in _dicts(container.get("env")):
            value_from = _dict(var.get("valueFrom"))
            add(configmaps, _dict(value_from.get("configMapKeyRef")).get("name"))
            add(secrets, _dict(value_from.get("secretKeyRef")).get("name"))
        for source in _dicts(container.get("envFrom")):
            add(configmaps, _dict(source.get("configMapRef")).get("name"))
            add(secrets, _dict(source.get("secretRef")).get("name"))
    for volume in _dicts(spec.get("volumes")):
        add(configmaps, _dict(volume.get("configMap")).get("name"))
        add(secrets, _dict(volume.get("secret")).get("secretName"))
        for source in _dicts(_dict(volume.get("projected")).get("sources")):
            add(configmaps, _dict(source.get("configMap")).get("name"))
            add(secrets, _dict(source.get("secret")).get("name"))
    for ref in _dicts(spec.get("imagePullSecrets")):
        add(secrets, ref.get("name"))
    return list(configmaps), list(secrets)


async def _read_named(
    gateway: ExecutionGateway,
    kind: str,
    names: list[str],
    *,
    referrer: str,
    namespace: str,
    requester: str,
    warnings: list[str],
) -> tuple[list[Obj], bool]:
    """The objects of ``kind`` that exist among ``names`` (at most ``MAX_REFERENCES``, read at
    once), and whether every name was read: a name skipped or failed is unknown, not missing."""
    if len(names) > MAX_REFERENCES:
        warnings.append(
            f"{len(names) - MAX_REFERENCES} {kind}s referenced by {referrer} not read "
            f"(bound: {MAX_REFERENCES} a kind)"
        )

    async def one(name: str) -> Obj | BackendError | None:
        try:
            return await gateway.get_object(kind, requester=requester, namespace=namespace, name=name)
        except BackendError as exc:
            return exc

    chosen = names[:MAX_REFERENCES]
    results = await asyncio.gather(*(one(name) for name in chosen))
    found: list[Obj] = []
    for name, result in zip(chosen, results, strict=True):
        if isinstance(result, BackendError):
            warnings.append(f"{kind} {namespace}/{name} not read: {result}")
        elif result is not None:
            found.append(result)
    complete = len(names) <= MAX_REFERENCES and not any(isinstance(r, BackendError) for r in results)
    return found, complete


async def _config_state(
    gateway: ExecutionGateway,
    specs: list[Obj],
    *,
    namespace: str,
    referrer: str,
    requester: str,
    warnings: list[str],
) -> dict[str, list[Obj]]:
    """The ConfigMaps the pod specs reference and, with metadata-only Secret reads on, their Secrets.

    A missing one is absent, which the analyzers report as "does not exist". Secrets enter the
    state only when every referenced one was read: ``secret_check`` takes a Secret absent from a
    state that has the kind as checked and missing. ConfigMaps enter it as read (the analyzers
    only show the keys of one that is there). Each is a GET by name: the read-only RBAC grants
    ``get`` on ConfigMaps, not ``list``.
    """
    configmaps: dict[str, None] = {}
    secrets: dict[str, None] = {}
    for spec in specs:
        found = config_references(spec)
        configmaps.update(dict.fromkeys(found[0]))
        secrets.update(dict.fromkeys(found[1]))
    read = partial(
        _read_named, gateway, referrer=referrer, namespace=namespace, requester=requester, warnings=warnings
    )
    (found_configmaps, _), (found_secrets, all_secrets) = await asyncio.gather(
        read("ConfigMap", list(configmaps)),
        read("Secret", list(secrets) if gateway.secret_metadata else []),
    )
    state: dict[str, list[Obj]] = {}
    if configmaps:
        state["ConfigMap"] = found_configmaps
    if gateway.secret_metadata:
        if all_secrets:
            state["Secret"] = found_secrets
        else:
            warnings.append(f"Secrets referenced by {referrer}: existence not checked (not all read)")
    return state


def _template_spec(obj: Obj) -> Obj:
    """The pod spec of a workload's template (a CronJob's through its job template)."""
    spec = _dict(obj.get("spec"))
    if obj.get("kind") == "CronJob":
        spec = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    return _dict(_dict(spec.get("template")).get("spec"))


async def _owner_state(gateway: ExecutionGateway, pod: Obj, *, requester: str) -> dict[str, list[Obj]]:
    """The pod's controller and its controller (a Deployment's or a CronJob's ReplicaSet/Job)."""
    metadata = _dict(pod.get("metadata"))
    namespace = str(metadata.get("namespace") or "")
    state: dict[str, list[Obj]] = {}
    for ref in _dicts(metadata.get("ownerReferences")):
        kind = str(ref.get("kind"))
        if not ref.get("controller") or kind not in _WORKLOADS:
            continue
        owner = await gateway.get_object(
            kind, requester=requester, namespace=namespace, name=str(ref.get("name"))
        )
        if owner is None:
            continue
        state.setdefault(kind, []).append(owner)
        for up in _dicts(_dict(owner.get("metadata")).get("ownerReferences")):
            if up.get("controller") and up.get("kind") in ("Deployment", "CronJob"):
                top = await gateway.get_object(
                    str(up["kind"]), requester=requester, namespace=namespace, name=str(up.get("name"))
                )
                if top is not None:
                    state.setdefault(str(up["kind"]), []).append(top)
    return state


async def _storage_state(gateway: ExecutionGateway, pod: Obj, *, requester: str) -> dict[str, list[Obj]]:
    """The claims the pod mounts and, when it mounts any, the StorageClasses."""
    namespace = str(_dict(pod.get("metadata")).get("namespace") or "")
    claims = [
        str(v["persistentVolumeClaim"].get("claimName"))
        for v in _dicts(_dict(pod.get("spec")).get("volumes"))
        if isinstance(v.get("persistentVolumeClaim"), dict)
    ]
    if not claims:
        return {}
    objs, classes = await asyncio.gather(
        asyncio.gather(
            *(
                gateway.get_object(
                    "PersistentVolumeClaim", requester=requester, namespace=namespace, name=claim
                )
                for claim in claims
            )
        ),
        gateway.list_objects("StorageClass", requester=requester),
    )
    return {"PersistentVolumeClaim": [obj for obj in objs if obj is not None], "StorageClass": classes}


async def _node_state(
    gateway: ExecutionGateway, pod: Obj, *, requester: str, warnings: list[str]
) -> dict[str, list[Obj]]:
    """Its node; for a pod not scheduled yet, every node (what the scheduling advice compares)."""
    node_name = _dict(pod.get("spec")).get("nodeName")
    if not isinstance(node_name, str):
        try:
            return {"Node": await gateway.list_objects("Node", requester=requester)}
        except BackendError as exc:
            warnings.append(f"Node not read: {exc}")
            return {}
    node = await gateway.node_state(requester=requester, name=node_name)
    return {"Node": [node] if node is not None else []}


async def _pod_state(
    gateway: ExecutionGateway, pod: Obj, *, requester: str, warnings: list[str]
) -> dict[str, list[Obj]]:
    """The pod and what it depends on, the independent reads at once (the orchestrator waits)."""
    metadata = _dict(pod.get("metadata"))
    namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name"))
    results = await asyncio.gather(
        gateway.events_for(requester=requester, kind="Pod", namespace=namespace, name=name),
        _owner_state(gateway, pod, requester=requester),
        _node_state(gateway, pod, requester=requester, warnings=warnings),
        _storage_state(gateway, pod, requester=requester),
        _config_state(
            gateway,
            [_dict(pod.get("spec"))],
            namespace=namespace,
            referrer=f"Pod {namespace}/{name}",
            requester=requester,
            warnings=warnings,
        ),
        return_exceptions=True,
    )
    # NB: every read is settled before a failure is raised, so none is left running unobserved.
    events, *parts = results
    if isinstance(events, BaseException):
        raise events
    state: dict[str, list[Obj]] = {"Pod": [pod], "Event": events}
    for part in parts:
        if isinstance(part, BaseException):
            raise part
        state.update(part)
    return state


async def _running_logs(gateway: ExecutionGateway, ctx: Context, pod: Obj, *, requester: str) -> None:
    """The current logs of the pod's running containers: one pod asked about is worth a read or
    two, and errors it keeps logging while Ready (forbidden, DNS, timeouts) show only there."""
    metadata = _dict(pod.get("metadata"))
    namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
    for status in _dicts(_dict(pod.get("status")).get("containerStatuses"))[:4]:
        container = status.get("name")
        if not isinstance(container, str) or "running" not in _dict(status.get("state")):
            continue
        if (namespace, name, container) in ctx.logs:
            continue
        try:
            text = await gateway.pod_logs(
                requester=requester, namespace=namespace, name=name, container=container, previous=False
            )
        except BackendError:
            continue
        if text and text.strip():
            ctx.running_logs[(namespace, name, container)] = LogText(text=text, pod=name, previous=False)


_MAX_SERVICES = 4  # Services followed per diagnosis: a pod names one or two dependencies
_MAX_UPSTREAM_PODS = 20


def _key(obj: Obj) -> tuple[str, str]:
    metadata = _dict(obj.get("metadata"))
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


async def _upstream_state(
    gateway: ExecutionGateway, findings: list[Finding], *, requester: str, warnings: list[str]
) -> dict[str, list[Obj]]:
    """The Services the findings' logs could not reach and the pods behind them (bounded reads)."""
    named: set[tuple[str, str]] = set()
    addresses: set[str] = set()
    for finding in findings:
        target = log_target(finding)
        ref = service_named(target, finding.namespace) if target else None
        if isinstance(ref, str):
            addresses.add(ref)
        elif ref is not None:
            named.add(ref)
    if not named and not addresses:
        return {}
    state: dict[str, list[Obj]] = {"Service": [], "Pod": []}
    try:
        if addresses:
            # NB: a ClusterIP names no Service: one LIST of Services finds which one has it.
            for listed in await gateway.list_objects("Service", requester=requester):
                if _dict(listed.get("spec")).get("clusterIP") in addresses:
                    named.add(_key(listed))
        clients = sorted({f.namespace for f in findings if log_target(f)})
        for client_namespace in clients[:_MAX_SERVICES]:
            found = await gateway.get_object(
                "Namespace", requester=requester, namespace=None, name=client_namespace
            )
            if found is not None:
                state.setdefault("Namespace", []).append(found)
        for namespace, name in sorted(named)[:_MAX_SERVICES]:
            service = await gateway.get_object("Service", requester=requester, namespace=namespace, name=name)
            if service is None:
                # NB: a bare name that is no Service here may be one in another namespace (the
                # chain then says "call it name.namespace"): one LIST by name finds it.
                state["Service"] += await gateway.list_objects(
                    "Service", requester=requester, field_selector=f"metadata.name={name}"
                )
                continue
            state["Service"].append(service)
            # The policies that may stand between the client and the Service's pods.
            state.setdefault("NetworkPolicy", []).extend(
                await gateway.list_objects("NetworkPolicy", requester=requester, namespace=namespace)
            )
            selector = _dict(service.get("spec")).get("selector")
            if not isinstance(selector, dict) or not selector:
                continue
            pods = await gateway.list_objects(
                "Pod",
                requester=requester,
                namespace=namespace,
                label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            )
            state["Pod"] += pods[:_MAX_UPSTREAM_PODS]
            if not pods:
                # NB: nothing selected: the workload behind it may be scaled to zero, which says why.
                for kind in ("StatefulSet", "Deployment", "DaemonSet"):
                    state.setdefault(kind, []).extend(
                        await gateway.list_objects(kind, requester=requester, namespace=namespace)
                    )
    except BackendError as exc:
        warnings.append(f"dependency not followed: {exc}")
    return {kind: items for kind, items in state.items() if items}


async def diagnose_object(
    gateway: ExecutionGateway,
    *,
    kind: str,
    namespace: str,
    name: str,
    scan_id: str | None = None,
    now: datetime | None = None,
) -> DiagnosisResult:
    """Findings about one object and its owner/related objects (its group)."""
    requester = scan_id or new_scan_id()
    warnings: list[str] = []
    obj = await gateway.get_object(kind, requester=requester, namespace=namespace or None, name=name)
    if obj is None:
        warnings.append(f"{kind} {namespace}/{name} does not exist")
        state: dict[str, list[Obj]] = {}
    elif kind == "Pod":
        state = await _pod_state(gateway, obj, requester=requester, warnings=warnings)
    else:
        kinds = [
            "Pod",
            "Event",
            "ReplicaSet",
            "Service",
            "Endpoints",
            "PersistentVolumeClaim",
            kind,
        ]

        async def one(k: str) -> tuple[str, list[Obj]]:
            try:
                return k, await gateway.list_objects(k, requester=requester, namespace=namespace or None)
            except BackendError as exc:
                warnings.append(f"{k} not read: {exc}")
                return k, []

        state = dict(await asyncio.gather(*(one(k) for k in dict.fromkeys(kinds))))
        state["StorageClass"] = await gateway.list_objects("StorageClass", requester=requester)
        # Its template's references, and those of the ReplicaSets it owns (an older template
        # may still run during a rollout).
        uid = _dict(obj.get("metadata")).get("uid")
        owned = [
            rs
            for rs in state.get("ReplicaSet", [])
            if uid
            and any(ref.get("uid") == uid for ref in _dicts(_dict(rs.get("metadata")).get("ownerReferences")))
        ]
        state.update(
            await _config_state(
                gateway,
                [_template_spec(obj), *map(_template_spec, owned)],
                namespace=namespace,
                referrer=f"{kind} {namespace}/{name}",
                requester=requester,
                warnings=warnings,
            )
        )
    index = Index.build(state)
    if now is None:
        now = (
            datetime.now(UTC)
            if gateway.source == "live"
            else datetime.fromisoformat(index.newest)
            if index.newest
            else datetime.now(UTC)
        )
    ctx = Context(index=index, now=now, warnings=warnings + index.warnings)
    await read_logs(gateway, ctx, requester=requester)
    if kind == "Pod" and obj is not None:
        await _running_logs(gateway, ctx, obj, requester=requester)
    findings, ctx = analyze_state(state, ctx)
    upstream = await _upstream_state(gateway, findings, requester=requester, warnings=warnings)
    if upstream:
        # Follow the chain one hop out (the Services its logs name, the pods behind them), then
        # analyze again over the wider state: the upstream findings and the links come with it.
        for extra_kind, items in upstream.items():
            have = {_key(o) for o in state.get(extra_kind, [])}
            state.setdefault(extra_kind, []).extend(o for o in items if _key(o) not in have)
        running = ctx.running_logs
        index = Index.build(state)
        ctx = Context(index=index, now=now, warnings=warnings + index.warnings)
        await read_logs(gateway, ctx, requester=requester)
        ctx.running_logs.update(running)
        findings, ctx = analyze_state(state, ctx)
    target_group = None
    if obj is not None:
        owner, _ = index.owner_of(obj) if kind != "Node" else (None, "")
        target_group = (
            group_of(owner, kind, namespace, name) if kind == "Pod" else f"{kind}/{namespace}/{name}"
        )
    related = [
        f
        for f in findings
        if f.group == target_group or (f.kind, f.namespace, f.name) == (kind, namespace, name)
    ]
    by_key = {f.key(): f for f in findings}
    chained = {f.key() for f in related}
    for finding in list(related):
        for up in upstream_of(finding, by_key):
            if up.key() not in chained:
                chained.add(up.key())
                related.append(up)
    return DiagnosisResult(
        cluster=gateway.cluster,
        source=gateway.source,
        findings=order(related),
        warnings=ctx.warnings,
        scan_id=requester,
        reference_time=now.isoformat().replace("+00:00", "Z"),
    )
