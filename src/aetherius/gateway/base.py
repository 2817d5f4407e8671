"""The Execution Gateway: the only door from diagnosis to a cluster.

A fixed set of read operations over one of two backends (the live API, a snapshot file). The
gateway, not the backend, redacts and audits, so both backends are held to the same rules and a
new backend cannot forget them. There is no write operation, and the live backend's HTTP layer
refuses every verb but GET.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from aetherius.gateway.audit import AuditRecord, AuditSink, MemoryAuditSink
from aetherius.gateway.kinds import kind_info
from aetherius.gateway.redact import redact_object, scrub_text

__all__ = ["Backend", "BackendError", "ExecutionGateway"]

DEFAULT_TAIL_LINES = 200
DEFAULT_LOG_BYTES = 64 * 1024


class BackendError(Exception):
    """A read failed (forbidden, unreachable); the scan goes on and reports it as a warning."""


class Backend(Protocol):
    """Raw reads; returns (data, bytes read). The gateway redacts and audits around it."""

    source: str  # "live" | "snapshot"
    cluster: str
    warnings: list[str]  # problems met while reading the input (skipped objects)

    async def list(
        self, kind: str, *, namespace: str | None, label_selector: str | None, field_selector: str | None
    ) -> list[dict[str, Any]]: ...

    async def get(self, kind: str, *, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    async def logs(
        self, *, namespace: str, name: str, container: str, previous: bool, tail_lines: int, max_bytes: int
    ) -> str | None: ...


def _size(data: Any) -> int:
    if data is None:
        return 0
    if isinstance(data, str):
        return len(data.encode())
    return len(orjson.dumps(data))


class ExecutionGateway:
    """Read operations, each redacted and written to the audit sink with the scan that asked."""

    def __init__(self, backend: Backend, *, audit: AuditSink | None = None) -> None:
        self._backend = backend
        self.audit: AuditSink = audit if audit is not None else MemoryAuditSink()

    @property
    def source(self) -> str:
        return self._backend.source

    @property
    def cluster(self) -> str:
        return self._backend.cluster

    @property
    def input_warnings(self) -> list[str]:
        return list(self._backend.warnings)

    def _record(
        self,
        *,
        operation: str,
        resource: str,
        namespace: str | None,
        name: str,
        requester: str,
        size: int,
        outcome: str = "ok",
        detail: str = "",
    ) -> None:
        self.audit.record(
            AuditRecord(
                time=AuditRecord.now(),
                operation=operation,
                resource=resource,
                namespace=namespace or "",
                name=name,
                requester=requester,
                bytes=size,
                outcome=outcome,
                detail=detail,
            )
        )

    async def list_objects(
        self,
        kind: str,
        *,
        requester: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every object of a kind (one LIST), redacted."""
        kind_info(kind)
        detail = " ".join(
            f"{k}={v}" for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v
        )
        try:
            items = await self._backend.list(
                kind, namespace=namespace, label_selector=label_selector, field_selector=field_selector
            )
        except BackendError as exc:
            self._record(
                operation="list",
                resource=kind,
                namespace=namespace,
                name="",
                requester=requester,
                size=0,
                outcome=f"error: {exc}",
                detail=detail,
            )
            raise
        redacted = [redact_object(kind, item) for item in items if isinstance(item, dict)]
        self._record(
            operation="list",
            resource=kind,
            namespace=namespace,
            name="",
            requester=requester,
            size=_size(redacted),
            detail=detail,
        )
        return redacted

    async def get_object(
        self, kind: str, *, requester: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        kind_info(kind)
        obj = await self._backend.get(kind, namespace=namespace, name=name)
        redacted = redact_object(kind, obj) if obj is not None else None
        self._record(
            operation="get",
            resource=kind,
            namespace=namespace,
            name=name,
            requester=requester,
            size=_size(redacted),
            outcome="ok" if redacted is not None else "not-found",
        )
        return redacted

    async def events_for(
        self, *, requester: str, kind: str, namespace: str | None, name: str
    ) -> list[dict[str, Any]]:
        """The events whose involved object is this one (one LIST with a field selector)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        if namespace:
            selector += f",involvedObject.namespace={namespace}"
        items = await self._backend.list(
            "Event", namespace=namespace, label_selector=None, field_selector=selector
        )
        redacted = [redact_object("Event", item) for item in items if isinstance(item, dict)]
        self._record(
            operation="events",
            resource=kind,
            namespace=namespace,
            name=name,
            requester=requester,
            size=_size(redacted),
        )
        return redacted

    async def pod_logs(
        self,
        *,
        requester: str,
        namespace: str,
        name: str,
        container: str,
        previous: bool = False,
        tail_lines: int = DEFAULT_TAIL_LINES,
        max_bytes: int = DEFAULT_LOG_BYTES,
    ) -> str | None:
        """The tail of a container's log (bounded by lines and bytes), scrubbed; None if absent."""
        text = await self._backend.logs(
            namespace=namespace,
            name=name,
            container=container,
            previous=previous,
            tail_lines=tail_lines,
            max_bytes=max_bytes,
        )
        scrubbed = scrub_text(text) if text is not None else None
        self._record(
            operation="logs",
            resource="Pod",
            namespace=namespace,
            name=name,
            requester=requester,
            size=_size(scrubbed),
            outcome="ok" if scrubbed is not None else "not-found",
            detail=f"container={container} previous={str(previous).lower()} tail={tail_lines} max_bytes={max_bytes}",
        )
        return scrubbed

    async def node_state(self, *, requester: str, name: str) -> dict[str, Any] | None:
        """A Node with its conditions, capacity and taints."""
        obj = await self._backend.get("Node", namespace=None, name=name)
        self._record(
            operation="node",
            resource="Node",
            namespace=None,
            name=name,
            requester=requester,
            size=_size(obj),
            outcome="ok" if obj is not None else "not-found",
        )
        return obj
