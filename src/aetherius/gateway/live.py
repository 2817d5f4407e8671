"""The live backend: reads through ``KubeClient`` (GET only, rate limited, paged LISTs)."""

from __future__ import annotations

from typing import Any

from aetherius.gateway.base import BackendError
from aetherius.gateway.kinds import kind_info
from aetherius.kube import KubeApiError, KubeClient, KubeConnectionError

__all__ = ["LiveBackend"]


class LiveBackend:
    """One API server. A LIST is one paged request per kind, never one per object."""

    source = "live"

    def __init__(self, client: KubeClient, *, cluster: str = "") -> None:
        self.client = client
        self.cluster = cluster or client.host
        self.warnings: list[str] = []

    async def list(
        self, kind: str, *, namespace: str | None, label_selector: str | None, field_selector: str | None
    ) -> list[dict[str, Any]]:
        info = kind_info(kind)
        params: dict[str, str | int | bool | None] = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
        }
        try:
            items, _ = await self.client.list_all(info.list_path(namespace), params=params)
        except KubeApiError as exc:
            if exc.status == 404:
                return []  # the API group is not served by this cluster: nothing of that kind
            raise BackendError(f"list {info.plural}: {exc.status} {exc.reason}") from exc
        except KubeConnectionError as exc:
            raise BackendError(f"list {info.plural}: {exc}") from exc
        for item in items:
            if isinstance(item, dict) and not item.get("kind"):
                item["kind"] = kind  # list items carry no kind on the wire
        return items

    async def get(self, kind: str, *, namespace: str | None, name: str) -> dict[str, Any] | None:
        info = kind_info(kind)
        try:
            return await self.client.get_json(info.object_path(namespace, name))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise BackendError(f"get {info.plural}/{name}: {exc.status} {exc.reason}") from exc
        except KubeConnectionError as exc:
            raise BackendError(f"get {info.plural}/{name}: {exc}") from exc

    async def logs(
        self, *, namespace: str, name: str, container: str, previous: bool, tail_lines: int, max_bytes: int
    ) -> str | None:
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/log"
        params: dict[str, str | int | bool | None] = {
            "container": container,
            "previous": previous,
            "tailLines": tail_lines,
            "limitBytes": max_bytes,
        }
        try:
            body = await self.client.get_bytes(path, params=params, max_bytes=max_bytes)
        except KubeApiError as exc:
            if exc.status in (400, 404):
                return None  # no previous instance, container not started yet, pod gone
            raise BackendError(f"logs {namespace}/{name}/{container}: {exc.status} {exc.reason}") from exc
        except KubeConnectionError as exc:
            raise BackendError(f"logs {namespace}/{name}/{container}: {exc}") from exc
        return body.decode("utf-8", "replace")
