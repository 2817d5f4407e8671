"""The live backend: reads through ``KubeClient`` (GET only, rate limited, paged LISTs).

A LIST is a few large pages per kind (``page_size`` items each; the API server serves up to
thousands per page), never one request per object. Pages are fetched as bytes, so the audit
reports what was read, and decoded straight into the analysis view when diagnosis asks for it.

Secrets: by default never requested at all (our RBAC grants no access to them, by design). With
``secret_metadata=True`` (``kube.secret_metadata``, off by default; needs ``list secrets`` in the
ClusterRole, which the default chart does not grant) they are read metadata-only
(``PartialObjectMetadataList``): the server sends names, labels and annotations, never ``data``.
"""

from __future__ import annotations

from typing import Any

import orjson

from aetherius.gateway.base import BackendError
from aetherius.gateway.decode import DecodeError, decode_list_page, strip
from aetherius.gateway.kinds import kind_info
from aetherius.gateway.redact import redact_object
from aetherius.kube import KubeApiError, KubeClient, KubeConnectionError
from aetherius.kube.client import METADATA_LIST, METADATA_OBJECT, check_metadata_only

__all__ = ["LIST_PAGE_SIZE", "LiveBackend", "SecretsNotRead"]

LIST_PAGE_SIZE = 5000
Page = tuple[list[dict[str, Any]], dict[str, Any]]  # items, list metadata


def _decode_full(kind: str, body: bytes, path: str) -> Page:
    try:
        page = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BackendError(f"list {path}: the server sent invalid JSON: {exc}") from None
    if not isinstance(page, dict):
        raise BackendError(f"list {path}: expected a JSON object")
    items = [strip(kind, item) for item in page.get("items") or () if isinstance(item, dict)]
    metadata = page.get("metadata")
    return items, metadata if isinstance(metadata, dict) else {}


def _decode_metadata(kind: str, body: bytes, path: str, accept: str) -> Page:
    """A metadata-only page: each item reduced to ``kind`` and ``metadata`` (nothing else came)."""
    try:
        page = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BackendError(f"list {path}: the server sent invalid JSON: {exc}") from None
    if not isinstance(page, dict):
        raise BackendError(f"list {path}: expected a JSON object")
    try:
        check_metadata_only(path, page, accept)
    except KubeConnectionError as exc:
        raise BackendError(str(exc)) from None
    docs = page.get("items") or () if accept == METADATA_LIST else (page,)
    items = [{"kind": kind, "metadata": doc.get("metadata") or {}} for doc in docs if isinstance(doc, dict)]
    metadata = page.get("metadata") if accept == METADATA_LIST else None
    return items, metadata if isinstance(metadata, dict) else {}


class SecretsNotRead(BackendError):
    """A Secret read on a live cluster while metadata-only Secret reads are off (the default)."""


class LiveBackend:
    """One API server. A LIST is one paged request sequence per kind, never one per object."""

    source = "live"

    def __init__(
        self,
        client: KubeClient,
        *,
        cluster: str = "",
        page_size: int = LIST_PAGE_SIZE,
        secret_metadata: bool = False,
    ) -> None:
        self.client = client
        self.cluster = cluster or client.host
        self.page_size = page_size
        self.secret_metadata = secret_metadata
        self.warnings: list[str] = []

    def _secret_accept(self, kind: str, accept: str) -> str:
        if kind != "Secret":
            return "application/json"
        if not self.secret_metadata:
            raise SecretsNotRead(
                "Secrets are not read from a live cluster (no RBAC by design; "
                "metadata-only reads are opt-in: kube.secret_metadata)"
            )
        return accept

    async def list(
        self,
        kind: str,
        *,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        analysis: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:
        info = kind_info(kind)
        path = info.list_path(namespace)
        accept = self._secret_accept(kind, METADATA_LIST)
        query: dict[str, str | int | bool | None] = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": self.page_size,
        }
        items: list[dict[str, Any]] = []
        size = 0
        while True:
            try:
                body = await self.client.get_bytes(path, params=query, accept=accept)
            except KubeApiError as exc:
                if exc.status == 404:
                    return [], size  # the API group is not served by this cluster: nothing of that kind
                raise BackendError(f"list {info.plural}: {exc.status} {exc.reason}") from exc
            except KubeConnectionError as exc:
                raise BackendError(f"list {info.plural}: {exc}") from exc
            size += len(body)
            if accept == METADATA_LIST:
                page_items, metadata = _decode_metadata(kind, body, path, accept)
            else:
                page_items, metadata = self._decode(kind, body, path, analysis=analysis)
            items.extend(page_items)
            token = metadata.get("continue")
            if not token:
                break
            query["continue"] = token
        for item in items:
            if not item.get("kind"):
                item["kind"] = kind  # list items carry no kind on the wire
        return items, size

    @staticmethod
    def _decode(kind: str, body: bytes, path: str, *, analysis: bool) -> Page:
        if analysis:
            try:
                return decode_list_page(kind, body)
            except DecodeError:
                pass  # an unexpected shape: the tolerant path below, redacted at once
            items, metadata = _decode_full(kind, body, path)
            return [redact_object(kind, item) for item in items], metadata
        return _decode_full(kind, body, path)

    async def get(self, kind: str, *, namespace: str | None, name: str) -> tuple[dict[str, Any] | None, int]:
        info = kind_info(kind)
        path = info.object_path(namespace, name)
        accept = self._secret_accept(kind, METADATA_OBJECT)
        try:
            body = await self.client.get_bytes(path, accept=accept)
        except KubeApiError as exc:
            if exc.status == 404:
                return None, 0
            raise BackendError(f"get {info.plural}/{name}: {exc.status} {exc.reason}") from exc
        except KubeConnectionError as exc:
            raise BackendError(f"get {info.plural}/{name}: {exc}") from exc
        if accept == METADATA_OBJECT:
            (obj,), _ = _decode_metadata(kind, body, path, accept)
            return obj, len(body)
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BackendError(f"get {info.plural}/{name}: the server sent invalid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise BackendError(f"get {info.plural}/{name}: expected a JSON object")
        return strip(kind, obj), len(body)

    async def logs(
        self, *, namespace: str, name: str, container: str, previous: bool, tail_lines: int, max_bytes: int
    ) -> str | None:
        path = kind_info("Pod").object_path(namespace, name, subresource="log")
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
