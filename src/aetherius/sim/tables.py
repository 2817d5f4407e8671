"""Server-side printing (``as=Table``): the columns ``kubectl get`` shows.

kubectl has no client-side printers any more; without a Table it shows NAME and AGE only. The
cells follow the real server's printers (pkg/printers/internalversion), notably the pod STATUS
column's reason logic, so ``kubectl get pods`` shows CrashLoopBackOff where a real cluster would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aetherius.sim.resources import ResourceType
from aetherius.sim.store import Obj

Column = tuple[str, str, int]  # name, type, priority (1 = wide only)
Printer = tuple[tuple[Column, ...], Callable[[Obj], list[Any]]]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        return f"{h // (24 * 365)}y{(h // 24) % 365}d"
    return f"{h // (24 * 365)}y"


def since(value: str | None) -> str:
    moment = _parse_time(value)
    if moment is None:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - moment).total_seconds())


def _age(obj: Obj) -> str:
    return since((obj.get("metadata") or {}).get("creationTimestamp"))


def pod_cells(pod: Obj) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    meta = pod.get("metadata") or {}
    total = len(spec.get("containers") or [])
    ready = 0
    reason = status.get("reason") or status.get("phase") or "Unknown"
    restarts = 0
    last_restart: str | None = None
    initializing = False
    init_specs = spec.get("initContainers") or []
    for index, container in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        initializing = True
        if terminated:
            reason = "Init:" + (terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        break
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if not initializing or conditions.get("Initialized") == "True":
        restarts, has_running = 0, False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            if finished and (last_restart is None or finished > last_restart):
                last_restart = finished
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                signal = terminated.get("signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode')}"
            elif container.get("ready") and "running" in state:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if conditions.get("Ready") == "True" else "NotReady"
    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    restart_text = str(restarts)
    if restarts and last_restart:
        restart_text = f"{restarts} ({since(last_restart)} ago)"
    gates = spec.get("readinessGates") or []
    return [
        meta.get("name", ""),
        f"{ready}/{total}",
        reason,
        restart_text,
        _age(pod),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        f"{len(gates)}" if gates else "<none>",
    ]


def _event_object(event: Obj) -> str:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def event_cells(event: Obj) -> list[Any]:
    last = event.get("lastTimestamp") or event.get("deprecatedLastTimestamp") or event.get("eventTime")
    first = event.get("firstTimestamp") or event.get("deprecatedFirstTimestamp") or event.get("eventTime")
    source = event.get("source") or event.get("deprecatedSource") or {}
    count = (
        event.get("count") or event.get("deprecatedCount") or (event.get("series") or {}).get("count") or 1
    )
    involved = event.get("involvedObject") or event.get("regarding") or {}
    return [
        since(last),
        event.get("type", ""),
        event.get("reason", ""),
        _event_object(event),
        involved.get("fieldPath", ""),
        ", ".join(str(v) for v in (source.get("component"), source.get("host")) if v),
        event.get("message") or event.get("note") or "",
        since(first),
        count,
        (event.get("metadata") or {}).get("name", ""),
    ]


def node_cells(node: Obj) -> list[Any]:
    status, spec, meta = node.get("status") or {}, node.get("spec") or {}, node.get("metadata") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted(
        key.split("/", 1)[1] for key in meta.get("labels") or {} if key.startswith("node-role.kubernetes.io/")
    )
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [
        meta.get("name", ""),
        state,
        ",".join(roles) or "<none>",
        _age(node),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def _images(obj: Obj) -> tuple[str, str]:
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def deployment_cells(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _images(obj)
    selector = ",".join(
        f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items()
    )
    return [
        obj["metadata"].get("name", ""),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj),
        names,
        images,
        selector,
    ]


def replicaset_cells(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        obj["metadata"].get("name", ""),
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj),
    ]


def service_cells(obj: Obj) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(
        f"{p.get('port')}"
        + (f":{p['nodePort']}" if p.get("nodePort") else "")
        + f"/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname") or "" for i in ingress) or (
        "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    )
    return [
        obj["metadata"].get("name", ""),
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        external,
        ports or "<none>",
        _age(obj),
    ]


def namespace_cells(obj: Obj) -> list[Any]:
    return [obj["metadata"].get("name", ""), (obj.get("status") or {}).get("phase", "Active"), _age(obj)]


def default_cells(obj: Obj) -> list[Any]:
    return [obj["metadata"].get("name", ""), obj["metadata"].get("creationTimestamp", "")]


_S, _I = "string", "integer"
PRINTERS: dict[str, Printer] = {
    "Pod": (
        (
            ("Name", _S, 0),
            ("Ready", _S, 0),
            ("Status", _S, 0),
            ("Restarts", _S, 0),
            ("Age", _S, 0),
            ("IP", _S, 1),
            ("Node", _S, 1),
            ("Nominated Node", _S, 1),
            ("Readiness Gates", _S, 1),
        ),
        pod_cells,
    ),
    "Event": (
        (
            ("Last Seen", _S, 0),
            ("Type", _S, 0),
            ("Reason", _S, 0),
            ("Object", _S, 0),
            ("Subobject", _S, 1),
            ("Source", _S, 1),
            ("Message", _S, 0),
            ("First Seen", _S, 1),
            ("Count", _I, 1),
            ("Name", _S, 1),
        ),
        event_cells,
    ),
    "Node": (
        (
            ("Name", _S, 0),
            ("Status", _S, 0),
            ("Roles", _S, 0),
            ("Age", _S, 0),
            ("Version", _S, 0),
            ("Internal-IP", _S, 1),
            ("External-IP", _S, 1),
            ("OS-Image", _S, 1),
            ("Kernel-Version", _S, 1),
            ("Container-Runtime", _S, 1),
        ),
        node_cells,
    ),
    "Deployment": (
        (
            ("Name", _S, 0),
            ("Ready", _S, 0),
            ("Up-to-date", _I, 0),
            ("Available", _I, 0),
            ("Age", _S, 0),
            ("Containers", _S, 1),
            ("Images", _S, 1),
            ("Selector", _S, 1),
        ),
        deployment_cells,
    ),
    "ReplicaSet": (
        (("Name", _S, 0), ("Desired", _I, 0), ("Current", _I, 0), ("Ready", _I, 0), ("Age", _S, 0)),
        replicaset_cells,
    ),
    "Service": (
        (
            ("Name", _S, 0),
            ("Type", _S, 0),
            ("Cluster-IP", _S, 0),
            ("External-IP", _S, 0),
            ("Port(s)", _S, 0),
            ("Age", _S, 0),
        ),
        service_cells,
    ),
    "Namespace": ((("Name", _S, 0), ("Status", _S, 0), ("Age", _S, 0)), namespace_cells),
}
_DEFAULT: Printer = ((("Name", _S, 0), ("Created At", "date", 0)), default_cells)


def render(
    rt: ResourceType,
    objects: list[Obj],
    rv: int,
    query: Mapping[str, str],
    *,
    metadata: dict[str, Any] | None = None,
) -> Obj:
    columns, cells = PRINTERS.get(rt.kind, _DEFAULT)
    include = query.get("includeObject", "Metadata")
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj)}
        if include == "Object":
            row["object"] = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append(row)
    definitions = [
        {
            "name": name,
            "type": kind,
            "format": "name" if name == "Name" else "",
            "description": "",
            "priority": p,
        }
        for name, kind, p in columns
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata or {"resourceVersion": str(rv)},
        "columnDefinitions": definitions,
        "rows": rows,
    }
