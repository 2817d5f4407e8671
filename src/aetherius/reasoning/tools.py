"""The investigator's tools: the Execution Gateway's read operations, and nothing else.

Arguments are pydantic models with strict validation (unknown fields refused), and their JSON
schemas are what the model sees in ``tools``. Reads are scoped to the incident's cluster and
namespace plus the nodes its pods run on, unless the operator widens the scope; Secrets cannot be
read by any tool (there is no argument that reaches them). Every read goes through the gateway, so
it is redacted and audited, with ``requester`` naming the investigation.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aetherius.gateway.base import BackendError, ExecutionGateway
from aetherius.gateway.kinds import UnknownKind

__all__ = ["TOOLS", "ToolError", "Toolbox", "tool_schemas"]

Kind = Literal[
    "Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service",
    "Endpoints", "ConfigMap", "PersistentVolumeClaim", "PersistentVolume", "Node", "Namespace",
    "Ingress", "HorizontalPodAutoscaler", "ResourceQuota", "LimitRange",
]  # fmt: skip
# NB: no "Secret" in the vocabulary: the schema itself refuses it.


class ToolError(Exception):
    """A call the tools refuse (bad arguments, out of scope); the text goes back to the model."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GetObject(_Args):
    """One object, redacted (Secret values never)."""

    kind: Kind
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, max_length=63)


class ListObjects(_Args):
    """Objects of a kind in a namespace (names and status only)."""

    kind: Kind
    namespace: str | None = Field(default=None, max_length=63)
    label_selector: str | None = Field(default=None, max_length=256)


class EventsFor(_Args):
    """The events of one object."""

    kind: Kind
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, max_length=63)


class PodLogs(_Args):
    """The tail of a container's log; previous=true for the instance that crashed before."""

    name: str = Field(min_length=1, max_length=253)
    container: str = Field(min_length=1, max_length=63)
    namespace: str | None = Field(default=None, max_length=63)
    previous: bool = False
    tail_lines: int = Field(default=100, ge=1, le=500)


class NodeState(_Args):
    """A node's conditions, capacity and taints."""

    name: str = Field(min_length=1, max_length=253)


class Findings(_Args):
    """What the rules engine found for this incident."""


class Runbook(_Args):
    """The runbook for a failure reason from the diagnosis contract."""

    reason: str = Field(min_length=1, max_length=64)


class SimilarIncidents(_Args):
    """Past incidents like this one and how they were explained."""


TOOLS: dict[str, type[_Args]] = {
    "get_object": GetObject,
    "list_objects": ListObjects,
    "events_for": EventsFor,
    "pod_logs": PodLogs,
    "node_state": NodeState,
    "incident_findings": Findings,
    "runbook": Runbook,
    "similar_incidents": SimilarIncidents,
}


def tool_schemas() -> list[dict[str, Any]]:
    """The ``tools`` field of a chat completions request."""
    out = []
    for name, model in TOOLS.items():
        schema = model.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        out.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": (model.__doc__ or "").strip(),
                    "parameters": schema,
                },
            }
        )
    return out


@dataclass
class Toolbox:
    """The tools bound to one incident: its gateway, scope and the knowledge around it."""

    gateway: ExecutionGateway
    requester: str  # "investigation:<id>", written on every audit record
    namespace: str | None
    nodes: set[str] = field(default_factory=set)
    widen: bool = False
    output_chars: int = 8000
    findings: list[dict[str, Any]] = field(default_factory=list)
    runbooks: Callable[[str], str | None] | None = None
    similar: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
    learn: Callable[[Any], None] = lambda _obj: None  # the pseudonymizer sees every object read

    def parse(self, name: str, arguments: str) -> _Args:
        """Validate a call's arguments (raw JSON); ToolError says what is wrong, for the model."""
        model = TOOLS.get(name)
        if model is None:
            raise ToolError(f"unknown tool {name!r}; the tools are {', '.join(TOOLS)}")
        try:
            raw = json.loads(arguments or "{}")
        except ValueError:
            raise ToolError("arguments are not valid JSON (truncated?)") from None
        if not isinstance(raw, dict):
            raise ToolError("arguments must be a JSON object")
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolError(f"invalid arguments: {problems}") from None

    def _namespace(self, asked: str | None) -> str | None:
        ns = asked or self.namespace
        if not self.widen and self.namespace and ns != self.namespace:
            raise ToolError(f"out of scope: this investigation reads namespace {self.namespace!r} only")
        return ns

    def _node(self, name: str) -> None:
        if not self.widen and name not in self.nodes:
            raise ToolError("out of scope: only the nodes the incident's pods run on")

    async def run(self, args: _Args) -> str:
        """One call, as the text the model gets back (capped); read errors become that text."""
        try:
            result = await self._run(args)
        except (BackendError, UnknownKind) as exc:
            result = f"read failed: {exc}"
        text = result if isinstance(result, str) else json.dumps(result, sort_keys=True, default=str)
        if len(text) > self.output_chars:
            text = (
                text[: self.output_chars] + f"\n[truncated: {len(text) - self.output_chars} more characters]"
            )
        return text

    async def _run(self, args: _Args) -> Any:
        gw, who = self.gateway, self.requester
        if isinstance(args, GetObject):
            if args.kind == "Node":
                self._node(args.name)
                obj = await gw.get_object("Node", requester=who, namespace=None, name=args.name)
            else:
                ns = (
                    None
                    if args.kind in ("Namespace", "PersistentVolume")
                    else self._namespace(args.namespace)
                )
                obj = await gw.get_object(args.kind, requester=who, namespace=ns, name=args.name)
            self._see(obj)
            return obj if obj is not None else "not found"
        if isinstance(args, ListObjects):
            if args.kind == "Node" and not self.widen:
                raise ToolError(
                    "out of scope: list nodes is not allowed; use node_state on the incident's nodes"
                )
            ns = self._namespace(args.namespace)
            items = await gw.list_objects(
                args.kind, requester=who, namespace=ns, label_selector=args.label_selector
            )
            for item in items:
                self._see(item)
            return [_summary(item) for item in items[:200]]
        if isinstance(args, EventsFor):
            ns = None if args.kind == "Node" else self._namespace(args.namespace)
            if args.kind == "Node":
                self._node(args.name)
            events = await gw.events_for(requester=who, kind=args.kind, namespace=ns, name=args.name)
            for event in events:
                self.learn(event)
            return [_event(e) for e in events[-50:]] or "no events"
        if isinstance(args, PodLogs):
            ns = self._namespace(args.namespace)
            if ns is None:
                raise ToolError("namespace required")
            text = await gw.pod_logs(
                requester=who,
                namespace=ns,
                name=args.name,
                container=args.container,
                previous=args.previous,
                tail_lines=args.tail_lines,
                max_bytes=self.output_chars * 4,
            )
            return text if text is not None else "no log"
        if isinstance(args, NodeState):
            self._node(args.name)
            node = await gw.node_state(requester=who, name=args.name)
            self.learn(node)
            return _node(node) if node is not None else "not found"
        if isinstance(args, Findings):
            return self.findings or "the rules found nothing"
        if isinstance(args, Runbook):
            text = self.runbooks(args.reason) if self.runbooks else None
            return text or "no runbook"
        if isinstance(args, SimilarIncidents):
            return (await self.similar()) if self.similar else "no past incidents"
        raise ToolError("unknown tool")  # pragma: no cover - parse() admits only the above

    async def prime(self, kind: str, name: str) -> None:
        """Read the incident's own object first (the nodes its pods run on come into scope), then the
        names around it, so that they are known (and pseudonymized) before any log mentions them."""
        try:
            obj = await self.gateway.get_object(
                kind, requester=self.requester, namespace=self.namespace, name=name
            )
        except (BackendError, UnknownKind):
            obj = None
        self._see(obj)
        await self._prefetch_names()

    async def _prefetch_names(self) -> None:
        """The names of the namespace's workloads, pods and Services and of the cluster's namespaces.

        Why up front: a name met in a log before any tool returned its object would otherwise leave
        as is; shapes in the text (``names.in_text``) catch DNS names and pods of known owners, and
        this read catches the bare names of the incident's own namespace. Bounded (one LIST per
        kind, at most ``_PREFETCH_ITEMS`` names each), audited like every read, and only learned:
        nothing here is sent, and it widens no scope.
        """
        reads: list[tuple[str, str | None]] = [("Namespace", None)]
        if self.namespace is not None:
            reads += [(k, self.namespace) for k in _PREFETCH_KINDS]
        for read_kind, ns in reads:
            try:
                items = await self.gateway.list_objects(read_kind, requester=self.requester, namespace=ns)
            except (BackendError, UnknownKind):
                continue
            for item in items[:_PREFETCH_ITEMS]:
                name = (item.get("metadata") or {}).get("name")
                if read_kind == "Namespace" and name in _PUBLIC_NAMESPACES:
                    continue  # the same in every cluster; hiding "default" only garbles prose
                self.learn(item)

    def _see(self, obj: Any) -> None:
        self.learn(obj)
        if isinstance(obj, dict) and obj.get("kind") == "Pod":
            node = (obj.get("spec") or {}).get("nodeName")
            if node and (
                self.namespace is None or (obj.get("metadata") or {}).get("namespace") == self.namespace
            ):
                self.nodes.add(str(node))


_PREFETCH_KINDS = ("Pod", "Service", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job")
_PREFETCH_ITEMS = 500
_PUBLIC_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def _summary(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    out: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    if isinstance(status, dict):
        if status.get("phase"):
            out["phase"] = status["phase"]
        waiting = [
            (cs.get("state") or {}).get("waiting", {}).get("reason")
            for cs in status.get("containerStatuses") or []
            if isinstance(cs, dict)
        ]
        if any(waiting):
            out["waiting"] = [w for w in waiting if w]
    return out


def _event(e: dict[str, Any]) -> dict[str, Any]:
    return {
        k: e.get(k) for k in ("type", "reason", "message", "count", "lastTimestamp") if e.get(k) is not None
    }


def _node(node: dict[str, Any]) -> dict[str, Any]:
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return {
        "name": (node.get("metadata") or {}).get("name"),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or []
        ],
        "capacity": status.get("capacity"),
        "allocatable": status.get("allocatable"),
        "taints": spec.get("taints") or [],
        "unschedulable": bool(spec.get("unschedulable")),
    }
