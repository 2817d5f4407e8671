"""The edge agent's side of the gateway: central's reads, answered for this cluster only.

The agent subscribes to its own query subjects (the server lets it subscribe to no other) and
answers each read from its live backend. Everything is settled here, before a byte leaves the
member cluster: names are held to Kubernetes' rules, Secrets are not read (the live backend's
rule), every object is redacted and every log line scrubbed, and every read is audited — one
structured log line and a counter on the agent (central's store keeps its own audit row too).

Bounded: at most ``concurrency`` reads run at once and ``backlog`` more wait; a request beyond
that is answered at once with "agent busy" (counted) rather than left to time out unseen. A list
larger than one message is held for ``PAGE_TTL`` seconds and fetched page by page.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from prometheus_client import Counter

from aetherius import __version__
from aetherius.fleet.protocol import GatewayReply, GatewayRequest, decode_request, encode
from aetherius.fleet.subjects import ClusterSubjects
from aetherius.gateway.base import Backend, BackendError
from aetherius.gateway.kinds import UnknownKind, kind_info
from aetherius.gateway.redact import redact_object, scrub_text
from aetherius.logs import get_logger
from aetherius.names import InvalidName, check_object

log = get_logger(__name__)

EDGE_READS = Counter(
    "aetherius_edge_gateway_reads_total",
    "Gateway reads answered by this edge agent, by operation and outcome",
    ["op", "outcome"],  # outcome: ok | not_found | error | rejected | busy | malformed
)
EDGE_TRUNCATED = Counter(
    "aetherius_edge_gateway_objects_truncated_total",
    "Objects larger than one message, sent with their metadata only",
)
PAGE_TTL = 60.0
MAX_HELD_LISTS = 16
# Room left in a message for the reply's own fields.
_ENVELOPE = 4096
_encoder = msgspec.msgpack.Encoder()


class GatewayResponder:
    def __init__(
        self,
        nc: NatsClient,
        backend: Backend,
        *,
        subjects: ClusterSubjects,
        concurrency: int = 4,
        backlog: int = 64,
        max_payload: int | None = None,
    ) -> None:
        self.nc = nc
        self.backend = backend
        self.subjects = subjects
        self.cluster = subjects.cluster
        self.concurrency = asyncio.Semaphore(concurrency)
        self.backlog = backlog
        self._max_payload = max_payload
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: OrderedDict[str, tuple[float, list[list[dict[str, Any]]]]] = OrderedDict()
        self._subscription: Any = None

    @property
    def max_payload(self) -> int:
        return self._max_payload or int(getattr(self.nc, "max_payload", 0) or 1024 * 1024)

    async def start(self) -> None:
        # NB: a queue group: several agent replicas of one cluster share its queries.
        self._subscription = await self.nc.subscribe(self.subjects.gateway(), queue="edge", cb=self._on_msg)

    async def stop(self) -> None:
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception as exc:  # the connection may already be closed
                log.debug("gateway subscription not removed", error=str(exc))
            self._subscription = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_msg(self, msg: Msg) -> None:
        if not msg.reply:
            return  # a publish, not a request: nobody to answer
        if len(self._tasks) >= self.backlog:
            EDGE_READS.labels(op="any", outcome="busy").inc()
            await self._respond(
                msg, GatewayReply(cluster=self.cluster, error=f"agent of {self.cluster} busy")
            )
            return
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        try:
            request = decode_request(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            EDGE_READS.labels(op="unknown", outcome="malformed").inc()
            await self._respond(msg, GatewayReply(cluster=self.cluster, error=f"malformed request: {exc}"))
            return
        async with self.concurrency:
            reply = await self.answer(request)
        await self._respond(msg, reply)

    async def _respond(self, msg: Msg, reply: GatewayReply) -> None:
        try:
            await msg.respond(encode(reply))
        except Exception as exc:  # the connection dropped: central times out and retries
            log.warning("gateway reply not sent", error=f"{type(exc).__name__}: {exc}")

    async def answer(self, request: GatewayRequest) -> GatewayReply:
        """One read, redacted and audited; a failure is a reply with ``error``, never an exception."""
        started = time.perf_counter()
        outcome, size = "ok", 0
        try:
            reply = await self._read(request)
            size = reply.bytes
            if not reply.found:
                outcome = "not_found"
            return reply
        except (InvalidName, UnknownKind) as exc:
            outcome = "rejected"
            return GatewayReply(cluster=self.cluster, error=str(exc))
        except BackendError as exc:
            outcome = "error"
            return GatewayReply(cluster=self.cluster, error=str(exc))
        finally:
            EDGE_READS.labels(op=request.op, outcome=outcome).inc()
            if request.op not in ("ping", "page"):
                log.info(
                    "gateway read",
                    op=request.op,
                    kind=request.kind,
                    namespace=request.namespace or "",
                    name=request.name,
                    container=request.container,
                    requester=request.requester,
                    bytes=size,
                    outcome=outcome,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )

    async def _read(self, request: GatewayRequest) -> GatewayReply:
        op = request.op
        if op == "ping":
            return GatewayReply(
                cluster=self.cluster, version=__version__, secret_metadata=self.backend.secret_metadata
            )
        if op == "page":
            return self._page(request)
        kind = "Pod" if op == "logs" else request.kind
        kind_info(kind)
        if op == "list":
            check_object(kind, namespace=request.namespace, name="x", entry="edge")
            items, size = await self.backend.list(
                kind,
                namespace=request.namespace,
                label_selector=request.label_selector,
                field_selector=request.field_selector,
                analysis=request.analysis,
            )
            redacted = [redact_object(kind, dict(item)) for item in items if isinstance(item, dict)]
            return self._paged(redacted, size=size)
        check_object(kind, namespace=request.namespace, name=request.name, entry="edge")
        if op == "get":
            obj, size = await self.backend.get(kind, namespace=request.namespace, name=request.name)
            if obj is None:
                return GatewayReply(cluster=self.cluster, found=False, bytes=size)
            return GatewayReply(
                cluster=self.cluster, obj=self._fit(kind, redact_object(kind, obj)), bytes=size
            )
        check_object("Pod", namespace=request.namespace, name=request.container or "x", entry="edge")
        text = await self.backend.logs(
            namespace=request.namespace or "",
            name=request.name,
            container=request.container,
            previous=request.previous,
            tail_lines=max(1, min(request.tail_lines, 10_000)),
            max_bytes=max(1, min(request.max_bytes, self.max_payload // 2)),
        )
        if text is None:
            return GatewayReply(cluster=self.cluster, found=False)
        return GatewayReply(cluster=self.cluster, text=scrub_text(text), bytes=len(text.encode()))

    def _fit(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj``, or its identity alone when it cannot fit one message (a 900 KB label…)."""
        return self._sized(kind, obj)[0]

    def _sized(self, kind: str, obj: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """``_fit`` with the encoded size of what it returns (each object is encoded once)."""
        size = len(_encoder.encode(obj))
        if size <= self.max_payload - _ENVELOPE:
            return obj, size
        EDGE_TRUNCATED.inc()
        found = obj.get("metadata")
        metadata: dict[str, Any] = found if isinstance(found, dict) else {}
        kept = {k: metadata[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in metadata}
        note = "metadata only: the object is larger than one message"
        stub: dict[str, Any] = {
            "apiVersion": obj.get("apiVersion", ""),
            "kind": obj.get("kind", kind),
            "metadata": {**kept, "annotations": {"aetherius.io/truncated": note}},
        }
        return stub, len(_encoder.encode(stub))

    def _paged(self, items: list[dict[str, Any]], *, size: int) -> GatewayReply:
        limit = self.max_payload - _ENVELOPE
        pages: list[list[dict[str, Any]]] = [[]]
        used = 0
        for item in items:
            fitted, cost = self._sized(str(item.get("kind") or ""), item)
            if used + cost > limit and pages[-1]:
                pages.append([])
                used = 0
            pages[-1].append(fitted)
            used += cost
        if len(pages) == 1:
            return GatewayReply(cluster=self.cluster, items=pages[0], bytes=size)
        cursor = uuid.uuid4().hex
        self._hold(cursor, pages)
        return GatewayReply(
            cluster=self.cluster, items=pages[0], bytes=size, cursor=cursor, page=0, pages=len(pages)
        )

    def _hold(self, cursor: str, pages: list[list[dict[str, Any]]]) -> None:
        now = time.monotonic()
        while self._held and (
            len(self._held) >= MAX_HELD_LISTS or next(iter(self._held.values()))[0] < now - PAGE_TTL
        ):
            self._held.popitem(last=False)
        self._held[cursor] = (now, pages)

    def _page(self, request: GatewayRequest) -> GatewayReply:
        held = self._held.get(request.cursor)
        if held is None or not 0 < request.page < len(held[1]):
            raise BackendError(f"list page {request.page} of {request.cursor[:8]} expired; list again")
        pages = held[1]
        if request.page == len(pages) - 1:
            del self._held[request.cursor]
        return GatewayReply(
            cluster=self.cluster,
            items=pages[request.page],
            cursor=request.cursor,
            page=request.page,
            pages=len(pages),
        )
