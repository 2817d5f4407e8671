"""The pod under analysis, unpacked once for the pod analyzers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aetherius.diagnosis.context import Context, format_quantity, parse_quantity
from aetherius.diagnosis.index import Ev, Malformed, group_of, meta
from aetherius.diagnosis.model import Owner

Obj = dict[str, Any]


@dataclass(slots=True)
class PodView:
    pod: Obj
    namespace: str
    name: str
    uid: str
    owner: Owner | None
    group: str
    age: float | None
    spec: Obj
    status: Obj
    events: list[Ev]
    containers: dict[str, Obj]  # name → container spec (init and regular)

    @classmethod
    def of(cls, pod: Obj, ctx: Context) -> PodView:
        metadata = meta(pod)
        spec, status = ctx.part(pod, "spec", kind="Pod"), ctx.part(pod, "status", kind="Pod")
        namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
        owner, _ = ctx.index.owner_of(pod)
        containers: dict[str, Obj] = {}
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or ():
                if isinstance(container, dict) and isinstance(container.get("name"), str):
                    containers[container["name"]] = container
        uid = str(metadata.get("uid") or "")
        return cls(
            pod=pod,
            namespace=namespace,
            name=name,
            uid=uid,
            owner=owner,
            group=group_of(owner, "Pod", namespace, name),
            age=ctx.age(metadata.get("creationTimestamp")),
            spec=spec,
            status=status,
            events=ctx.index.events("Pod", namespace, name, uid),
            containers=containers,
        )

    def statuses(self, key: str) -> list[Obj]:
        items = self.status.get(key) or []
        if not isinstance(items, list):
            raise Malformed(f"status.{key} is not a list")
        return [cs for cs in items if isinstance(cs, dict) and isinstance(cs.get("name"), str)]

    def condition(self, type_: str) -> Obj | None:
        for cond in self.status.get("conditions") or ():
            if isinstance(cond, dict) and cond.get("type") == type_:
                return cond
        return None

    def resource(self, container: str, field: str, resource: str) -> str | None:
        res = self.containers.get(container, {}).get("resources") or {}
        value = (res.get(field) or {}).get(resource) if isinstance(res, dict) else None
        return str(value) if value is not None else None

    def requests(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for container in self.spec.get("containers") or ():
            if not isinstance(container, dict):
                continue
            requests = (container.get("resources") or {}).get("requests") or {}
            for resource, value in requests.items() if isinstance(requests, dict) else ():
                amount = parse_quantity(value)
                if amount is not None:
                    total[resource] = total.get(resource, 0.0) + amount
        return total

    def where(self) -> str:
        """How to name the pod's owner in a recommendation."""
        return f"{self.owner.kind} {self.owner.name}" if self.owner else f"pod {self.name}"


def describe_requests(requests: dict[str, float]) -> str:
    parts = []
    for resource, value in sorted(requests.items()):
        memory = resource == "memory" or "storage" in resource
        parts.append(
            f"{resource}={format_quantity(value, memory=memory) if resource in ('cpu', 'memory') else f'{value:g}'}"
        )
    return ", ".join(parts)
