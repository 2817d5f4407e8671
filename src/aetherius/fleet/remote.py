"""Central's side of the gateway: a ``Backend`` that reads a member cluster through its agent.

Each read is one NATS request to ``aetherius.gateway.<cluster>.<op>``; the agent answers with
what it read, redacted there. The outcomes of a request are all first-class, none a hang:

- no agent subscribed (``NoRespondersError``, known at once): "cluster X agent not connected";
- no answer within ``timeout``: "cluster X agent did not answer … within N s";
- a reply naming another cluster is refused (a queue-group mistake must not mix clusters).

``unavailable()`` pings the agent with a short timeout before a diagnosis starts, so a cluster
whose agent is gone makes the report say so in well under a second, instead of one failed read
per object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import msgspec
from prometheus_client import Counter, Histogram

from aetherius.bus.base import BusUnavailable, NoResponders
from aetherius.fleet.protocol import GatewayReply, GatewayRequest, decode_reply, encode
from aetherius.fleet.subjects import ClusterSubjects
from aetherius.gateway.base import REQUESTER, BackendError
from aetherius.gateway.readers import NoReader

REMOTE_READS = Counter(
    "aetherius_remote_gateway_requests_total",
    "Gateway requests to edge agents, by cluster, operation and outcome",
    ["cluster", "op", "outcome"],  # ok | error | no_responders | timeout | bad_reply
)
REMOTE_LATENCY = Histogram(
    "aetherius_remote_gateway_seconds", "Round trip of a gateway request to an edge agent", ["op"]
)
MAX_PAGES = 1000


@runtime_checkable
class Requester(Protocol):
    """A request/reply transport (``NatsBus.request``): raises ``NoResponders``, ``TimeoutError``
    or ``BusUnavailable``."""

    async def request(
        self, subject: str, payload: bytes, *, timeout: float, reply_prefix: str | None = None
    ) -> bytes: ...


class AgentUnavailable(NoReader):
    """The cluster's agent is not connected, or did not answer in time."""


class RemoteBackend:
    source = "live"

    def __init__(
        self,
        transport: Requester,
        *,
        subjects: ClusterSubjects,
        timeout: float = 10.0,
        ping_timeout: float = 0.5,
    ) -> None:
        self.transport = transport
        self.subjects = subjects
        self.cluster = subjects.cluster
        self.timeout = timeout
        self.ping_timeout = ping_timeout
        self.secret_metadata = False
        self.warnings: list[str] = []
        self.agent_version = ""

    async def _ask(self, request: GatewayRequest, *, timeout: float | None = None) -> GatewayReply:
        wait = self.timeout if timeout is None else timeout
        if not request.requester:
            request = msgspec.structs.replace(request, requester=REQUESTER.get())
        what = _describe(request)
        outcome = "ok"
        timer = REMOTE_LATENCY.labels(op=request.op).time()
        try:
            with timer:
                data = await self.transport.request(
                    self.subjects.gateway(request.op),
                    encode(request),
                    timeout=wait,
                    reply_prefix=self.subjects.gateway_inbox,
                )
        except NoResponders:
            outcome = "no_responders"
            raise AgentUnavailable(f"cluster {self.cluster} agent not connected") from None
        except TimeoutError:
            outcome = "timeout"
            raise AgentUnavailable(
                f"cluster {self.cluster} agent did not answer {what} within {wait:g} s"
            ) from None
        except BusUnavailable as exc:
            outcome = "error"
            raise AgentUnavailable(f"cluster {self.cluster}: central bus unavailable: {exc}") from None
        finally:
            REMOTE_READS.labels(cluster=self.cluster, op=request.op, outcome=outcome).inc()
        try:
            reply = decode_reply(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            REMOTE_READS.labels(cluster=self.cluster, op=request.op, outcome="bad_reply").inc()
            raise BackendError(
                f"{what}: the agent of {self.cluster} sent an unreadable reply: {exc}"
            ) from None
        if reply.cluster != self.cluster:
            REMOTE_READS.labels(cluster=self.cluster, op=request.op, outcome="bad_reply").inc()
            raise BackendError(f"{what}: a reply from cluster {reply.cluster!r}, not {self.cluster!r}")
        if reply.error:
            raise BackendError(f"{what} on cluster {self.cluster}: {reply.error}")
        return reply

    async def unavailable(self) -> str | None:
        """Why the agent cannot be read right now (None: it answered a ping)."""
        try:
            reply = await self._ask(GatewayRequest(op="ping"), timeout=self.ping_timeout)
        except AgentUnavailable as exc:
            return str(exc)
        except BackendError as exc:
            return str(exc)
        self.secret_metadata = reply.secret_metadata
        self.agent_version = reply.version
        return None

    async def list(
        self,
        kind: str,
        *,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        analysis: bool = False,
    ) -> tuple[Sequence[dict[str, Any]], int]:
        request = GatewayRequest(
            op="list",
            kind=kind,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            analysis=analysis,
        )
        reply = await self._ask(request)
        items = list(reply.items)
        for page in range(1, min(reply.pages, MAX_PAGES)):
            more = await self._ask(GatewayRequest(op="page", cursor=reply.cursor, page=page))
            items.extend(more.items)
        return items, reply.bytes

    async def get(self, kind: str, *, namespace: str | None, name: str) -> tuple[dict[str, Any] | None, int]:
        reply = await self._ask(GatewayRequest(op="get", kind=kind, namespace=namespace, name=name))
        return (reply.obj if reply.found else None), reply.bytes

    async def logs(
        self, *, namespace: str, name: str, container: str, previous: bool, tail_lines: int, max_bytes: int
    ) -> str | None:
        reply = await self._ask(
            GatewayRequest(
                op="logs",
                namespace=namespace,
                name=name,
                container=container,
                previous=previous,
                tail_lines=tail_lines,
                max_bytes=max_bytes,
            )
        )
        return reply.text if reply.found else None


def _describe(request: GatewayRequest) -> str:
    if request.op == "logs":
        return f"logs {request.namespace}/{request.name}/{request.container}"
    if request.op in ("ping", "page"):
        return request.op
    where = f"{request.namespace}/" if request.namespace else ""
    return f"{request.op} {request.kind} {where}{request.name}".rstrip()
