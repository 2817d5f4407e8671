"""``aetherius snapshot``: the live state written in the snapshot format, through the gateway (so it
is redacted exactly like a diagnosis), with the logs of failing containers as ``PodLogs``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from aetherius.diagnosis.context import Context
from aetherius.diagnosis.engine import SCAN_KINDS, ClusterUnreadable, new_scan_id
from aetherius.diagnosis.index import Index
from aetherius.diagnosis.logplan import plan
from aetherius.gateway import BackendError, ExecutionGateway, live_gateway
from aetherius.gateway.snapshot import CAPTURED_AT_ANNOTATION, CLUSTER_ANNOTATION, KINDS_READ_ANNOTATION
from aetherius.kube import KubeClient

__all__ = ["capture", "capture_state"]


async def capture_state(
    gateway: ExecutionGateway, *, namespace: str | None = None, scan_id: str = ""
) -> dict[str, Any]:
    """The snapshot document: a ``List`` of every object read, plus the failing containers' logs."""
    requester = scan_id or new_scan_id()
    captured_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    items: list[dict[str, Any]] = []
    state: dict[str, list[dict[str, Any]]] = {}
    for kind in SCAN_KINDS:
        try:
            objects = await gateway.list_objects(kind, requester=requester, namespace=namespace)
        except BackendError as exc:
            if kind == "Pod":  # see ClusterUnreadable: an empty snapshot is not a picture of the cluster
                raise ClusterUnreadable(str(exc)) from None
            continue
        state[kind] = objects
        items.extend({"kind": kind, **obj} if "kind" not in obj else obj for obj in objects)
    ctx = Context(index=Index.build(state), now=datetime.now(UTC))
    for (_, container), candidates in sorted(plan(ctx).items()):
        for ns, pod, previous in candidates:
            for instance in (True, False) if previous else (False,):
                try:
                    text = await gateway.pod_logs(
                        requester=requester, namespace=ns, name=pod, container=container, previous=instance
                    )
                except BackendError:
                    text = None
                if text:
                    items.append(
                        {
                            "apiVersion": "aetherius.io/v1",
                            "kind": "PodLogs",
                            "metadata": {"namespace": ns, "name": pod},
                            "container": container,
                            "previous": instance,
                            "text": text,
                        }
                    )
    cluster = gateway.cluster
    return {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {
            "annotations": {
                CLUSTER_ANNOTATION: cluster,
                CAPTURED_AT_ANNOTATION: captured_at,
                KINDS_READ_ANNOTATION: ",".join(sorted(state)),
            }
        },
        "items": items,
    }


async def capture(client: KubeClient, path: Path, *, namespace: str | None = None, cluster: str = "") -> int:
    document = await capture_state(live_gateway(client, cluster=cluster), namespace=namespace)
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    await asyncio.to_thread(path.write_bytes, data)
    return len(document["items"])
