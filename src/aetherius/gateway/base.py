"""The Execution Gateway: the only door from diagnosis to a cluster.

A fixed set of read operations over one of two backends (the live API, a snapshot file). The
gateway, not the backend, redacts and audits, so both backends are held to the same rules and a
new backend cannot forget them. There is no write operation, and the live backend's HTTP layer
refuses every verb but GET.

Two views of objects. ``list_objects``/``get_object``/``events_for`` answer external callers
(``aetherius snapshot``, a single-object diagnosis, anything outside this process) with whole
objects redacted by ``redact_object``. ``scan_objects`` answers the in-process analyzers with the
analysis view (``gateway.decode``): only the fields analyzers read, env values and Secret data
never decoded, text left as it came; every string that leaves a diagnosis (a finding's summary,
evidence, recommendations; warnings; log text) is scrubbed where it leaves (``Context.finding``,
``pod_logs``). Audit bytes are the bytes the backend actually read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from aetherius.gateway.audit import AuditRecord, AuditSink, MemoryAuditSink
from aetherius.gateway.decode import AnalysisItem
from aetherius.gateway.kinds import kind_info
from aetherius.gateway.redact import redact_object, scrub_text
from aetherius.names import InvalidName, check_object

__all__ = ["Backend", "BackendError", "ExecutionGateway"]

DEFAULT_TAIL_LINES = 200
DEFAULT_LOG_BYTES = 64 * 1024
_OUTCOME_LIMIT = 64  # the audit table's outcome column
_T = TypeVar("_T")


# Who asked for the read in progress: a backend that forwards reads (an edge agent's) passes it on,
# so the member cluster's own audit names the diagnosis too.
REQUESTER: ContextVar[str] = ContextVar("aetherius_gateway_requester", default="")


class BackendError(Exception):
    """A read failed (forbidden, unreachable); the scan goes on and reports it as a warning."""


class Backend(Protocol):
    """Raw reads, each with the number of bytes read. The gateway redacts and audits around it.

    ``analysis=True`` asks for the analysis view (see the module docstring); Secrets come back
    with their metadata only on either view.
    """

    source: str  # "live" | "snapshot"
    cluster: str
    secret_metadata: bool  # whether Secrets (metadata only) may be listed at all
    warnings: list[str]  # problems met while reading the input (skipped objects)

    async def list(
        self,
        kind: str,
        *,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        analysis: bool = False,
    ) -> tuple[Sequence[AnalysisItem], int]: ...

    async def get(
        self, kind: str, *, namespace: str | None, name: str
    ) -> tuple[dict[str, Any] | None, int]: ...

    async def logs(
        self, *, namespace: str, name: str, container: str, previous: bool, tail_lines: int, max_bytes: int
    ) -> str | None: ...


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
    def secret_metadata(self) -> bool:
        """Whether this backend lists Secrets (metadata only); live: opt-in, off by default."""
        return self._backend.secret_metadata

    @property
    def input_warnings(self) -> list[str]:
        return list(self._backend.warnings)

    @property
    def captured_at(self) -> str:
        """When a snapshot was captured ("" when unknown, and for a live cluster: now is now)."""
        return str(getattr(self._backend, "captured_at", ""))

    def held_logs(self) -> list[tuple[str, str, str]]:
        """Logs the input already carries (a snapshot's ``PodLogs``), free to read; live: none."""
        held = getattr(self._backend, "held_logs", None)
        return [] if held is None else list(held())

    def holds(self, kind: str) -> bool:
        """Whether the input has ``kind`` at all: a snapshot may have been captured without it.

        A live cluster holds every kind (a read that fails is a warning of its own).
        """
        holds = getattr(self._backend, "holds", None)
        return True if holds is None else bool(holds(kind))

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
        """Every object of a kind (one LIST), whole and redacted: for callers outside diagnosis."""
        items = await self._list(
            kind,
            requester=requester,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            analysis=False,
        )
        return [redact_object(kind, item) for item in items if isinstance(item, dict)]

    async def scan_objects(
        self, kind: str, *, requester: str, namespace: str | None = None
    ) -> Sequence[AnalysisItem]:
        """Every object of a kind in the analysis view, for in-process analyzers only.

        NB: not redacted object by object (that was most of a scan's cost); nothing here leaves
        the process except through findings, which ``Context.finding`` scrubs.
        """
        return await self._list(
            kind,
            requester=requester,
            namespace=namespace,
            label_selector=None,
            field_selector=None,
            analysis=True,
        )

    async def _audited(
        self,
        read: Callable[[], Awaitable[_T]],
        *,
        operation: str,
        resource: str,
        namespace: str | None,
        name: str,
        requester: str,
        detail: str = "",
        size: Callable[[_T], int],
        found: Callable[[_T], bool] = lambda _: True,
        checks: Sequence[tuple[str, str]] = (),
    ) -> _T:
        """Run one read with its audit record, whatever its outcome.

        ``checks`` are the (kind, name) pairs to hold to Kubernetes' naming rules first (and the
        namespace always): a name no object
        can have is a counted "rejected" record and no read at all. A read that fails is
        recorded before its error goes on: a failed read is a read all the same.
        """

        def record(outcome: str, size: int = 0) -> None:
            self._record(
                operation=operation,
                resource=resource,
                namespace=(namespace or "")[:253],
                name=name[:253],
                requester=requester,
                size=size,
                outcome=outcome[:_OUTCOME_LIMIT],
                detail=detail,
            )

        try:
            if namespace:
                check_object("Namespace", namespace=None, name=namespace, entry="gateway")
            for kind, value in checks:
                check_object(kind, namespace=None, name=value, entry="gateway")
        except InvalidName as exc:
            record("rejected: invalid name")
            raise BackendError(f"{operation} {resource} refused: {exc}") from None
        token = REQUESTER.set(requester)
        try:
            result = await read()
        except BackendError as exc:
            record(f"error: {exc}")
            raise
        except BaseException as exc:
            record(f"error: {type(exc).__name__}")
            raise
        finally:
            REQUESTER.reset(token)
        record("ok" if found(result) else "not-found", size(result))
        return result

    async def _list(
        self,
        kind: str,
        *,
        requester: str,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        analysis: bool,
    ) -> Sequence[AnalysisItem]:
        kind_info(kind)
        detail = " ".join(
            f"{k}={v}" for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v
        )
        items, _ = await self._audited(
            lambda: self._backend.list(
                kind,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                analysis=analysis,
            ),
            operation="list",
            resource=kind,
            namespace=namespace,
            name="",
            requester=requester,
            detail=detail,
            size=lambda result: result[1],
        )
        return items

    async def get_object(
        self, kind: str, *, requester: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        kind_info(kind)
        obj, _ = await self._audited(
            lambda: self._backend.get(kind, namespace=namespace, name=name),
            operation="get",
            resource=kind,
            namespace=namespace,
            name=name,
            requester=requester,
            size=lambda result: result[1],
            found=lambda result: result[0] is not None,
            checks=[(kind, name)],
        )
        return redact_object(kind, obj) if obj is not None else None

    async def events_for(
        self, *, requester: str, kind: str, namespace: str | None, name: str
    ) -> list[dict[str, Any]]:
        """The events whose involved object is this one (one LIST with a field selector)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        if namespace:
            selector += f",involvedObject.namespace={namespace}"
        items, _ = await self._audited(
            lambda: self._backend.list(
                "Event", namespace=namespace, label_selector=None, field_selector=selector
            ),
            operation="events",
            resource=kind,
            namespace=namespace,
            name=name,
            requester=requester,
            size=lambda result: result[1],
            checks=[(kind, name)],  # NB: a name with "," would add terms to the field selector
        )
        return [redact_object("Event", item) for item in items if isinstance(item, dict)]

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
        detail = (
            f"container={container} previous={str(previous).lower()} tail={tail_lines} max_bytes={max_bytes}"
        )

        text = await self._audited(
            lambda: self._backend.logs(
                namespace=namespace,
                name=name,
                container=container,
                previous=previous,
                tail_lines=tail_lines,
                max_bytes=max_bytes,
            ),
            operation="logs",
            resource="Pod",
            namespace=namespace,
            name=name,
            requester=requester,
            detail=detail,
            size=lambda result: len(result.encode()) if result is not None else 0,
            found=lambda result: result is not None,
            checks=[("Pod", name), ("Container", container)],
        )
        return scrub_text(text) if text is not None else None

    async def node_state(self, *, requester: str, name: str) -> dict[str, Any] | None:
        """A Node with its conditions, capacity and taints."""
        obj, _ = await self._audited(
            lambda: self._backend.get("Node", namespace=None, name=name),
            operation="node",
            resource="Node",
            namespace=None,
            name=name,
            requester=requester,
            size=lambda result: result[1],
            found=lambda result: result[0] is not None,
            checks=[("Node", name)],
        )
        return obj
