"""Bulk-load a pre-rendered stream of watch events, for benchmarks of watch consumers.

Each event's line is encoded once here; the watch loop writes those bytes in large batches, so
replaying 100k events costs the sim little more than the socket writes. Only the lines are
kept (no per-event dicts) unless ``store_objects`` also puts the objects in the current state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from aetherius.sim.resources import BY_PATH
from aetherius.sim.store import Change, LedgerEntry, Obj, Store

_EVENTS = BY_PATH[("", "v1", "events")]

# (type, reason, message template, component): what kubelets and the scheduler emit most.
_MIX = (
    ("Warning", "BackOff", "Back-off restarting failed container {c} in pod {p}_{ns}({uid})", "kubelet"),
    ("Warning", "Failed", 'Failed to pull image "registry.local/{c}:v{i}": not found', "kubelet"),
    ("Normal", "BackOff", 'Back-off pulling image "registry.local/{c}:v{i}"', "kubelet"),
    (
        "Warning",
        "FailedScheduling",
        "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.",
        "default-scheduler",
    ),
    ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", "kubelet"),
    ("Normal", "Pulled", 'Container image "registry.local/{c}:v1" already present on machine', "kubelet"),
    ("Normal", "Started", "Started container {c}", "kubelet"),
    ("Warning", "OOMKilling", "Memory cgroup out of memory: Killed process {i} ({c})", "kernel-monitor"),
)


@dataclass(frozen=True)
class PreloadResult:
    """Watch from ``start_rv`` to receive exactly the ``count`` preloaded events."""

    start_rv: int
    first_rv: int
    last_rv: int
    count: int


def preload_events(
    store: Store,
    n: int,
    *,
    namespace: str = "bench",
    pods: int = 500,
    store_objects: bool = False,
    modified_every: int = 4,
) -> PreloadResult:
    """Append ``n`` core/v1 Event changes (ADDED, and every ``modified_every``-th a MODIFIED
    repeat with a higher ``count``, as the kubelet's event aggregation does).

    The history must hold them: raise ``history_size`` to at least ``n`` for a full replay.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    start_rv = store.resource_version
    base = datetime(2026, 1, 1, tzinfo=UTC)
    pod_uids = [str(uuid.UUID(int=index + 1)) for index in range(pods)]
    previous: Obj | None = None
    for index in range(n):
        rv = store.next_rv()
        repeat = previous is not None and modified_every > 0 and index % modified_every == 0
        if repeat and previous is not None:
            obj = dict(previous)
            obj["metadata"] = {**previous["metadata"], "resourceVersion": str(rv)}
            obj["count"] = int(previous["count"]) + 1
            obj["lastTimestamp"] = (base + timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
            event_type = "MODIFIED"
        else:
            pod_index = index % pods
            pod, container = f"app-{pod_index:04d}-7d9f8-x{pod_index % 97:02d}q", f"c{pod_index % 3}"
            kind, reason, template, component = _MIX[index % len(_MIX)]
            stamp = (base + timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
            uid = pod_uids[pod_index]
            obj = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{pod}.{index:016x}",
                    "namespace": namespace,
                    "uid": str(uuid.UUID(int=(1 << 64) + index)),
                    "resourceVersion": str(rv),
                    "creationTimestamp": stamp,
                },
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": pod,
                    "uid": uid,
                    "fieldPath": f"spec.containers{{{container}}}",
                },
                "reason": reason,
                "message": template.format(c=container, p=pod, ns=namespace, uid=uid, i=index),
                "source": {"component": component, "host": f"node-{pod_index % 3 + 1}"},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "type": kind,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": f"node-{pod_index % 3 + 1}",
            }
            event_type = "ADDED"
        previous = obj
        line = orjson.dumps({"type": event_type, "object": obj}) + b"\n"
        meta = obj["metadata"]
        store.append_prebuilt(
            Change(
                rv=rv, type=event_type, key=_EVENTS.key, namespace=namespace, obj=None, old=None, line=line
            ),
            LedgerEntry(rv, event_type, "Event", namespace, meta["name"], meta["uid"]),
            stored=obj if store_objects else None,
        )
    store.notify()
    return PreloadResult(start_rv=start_rv, first_rv=start_rv + 1, last_rv=store.resource_version, count=n)
