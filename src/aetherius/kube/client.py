"""``KubeClient``: read-only, rate-limited, raw-JSON access to one Kubernetes API server.

It has no write method, and its single request path refuses every HTTP verb but GET, so nothing
built on it can change a cluster. Responses are returned as bytes or orjson-decoded dicts.

One exception, and only one: ``review_own_rules`` POSTs a ``SelfSubjectRulesReview`` to exactly
``RULES_REVIEW_PATH``, asking the API server what the client's own credentials may do in one
namespace (to warn when they could write). A review is a question the server answers and never
persists; ``_request`` lets a POST through only to that path, with exactly that body shape (no
other user, no other kind), so the exception cannot carry a write.

``metadata_only=True`` asks the API server for ``PartialObjectMetadata(List)`` (``meta.k8s.io/v1``):
each object's ``metadata`` and nothing else — what the client-go metadata client does, but with
no fall back to whole objects in the ``Accept`` header, so a server that cannot serve it answers
406 instead of sending (for a Secret) its data. NB: RBAC still asks for get/list on the resource.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from prometheus_client import Counter

from aetherius.config import KubeSettings
from aetherius.kube.credentials import Credentials, CredentialsError, load_credentials
from aetherius.kube.ratelimit import TokenBucket

__all__ = [
    "METADATA_LIST",
    "METADATA_OBJECT",
    "RULES_REVIEW_PATH",
    "CredentialsError",
    "KubeApiError",
    "KubeClient",
    "KubeConnectionError",
    "ReadOnlyViolation",
    "check_metadata_only",
]

Params = Mapping[str, str | int | bool | None]

# NB: no ",application/json" fall back: a server that ignores these must not send whole objects.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_OBJECT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_METADATA_KINDS = {METADATA_LIST: "PartialObjectMetadataList", METADATA_OBJECT: "PartialObjectMetadata"}


class ReadOnlyViolation(Exception):
    """Something tried to send a request that could change the cluster."""


RULES_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def rules_review(namespace: str) -> bytes:
    """The one body ``RULES_REVIEW_PATH`` accepts: "what may I do in ``namespace``?"."""
    return orjson.dumps(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        }
    )


def _is_rules_question(body: bytes | None) -> bool:
    """Whether ``body`` is exactly ``rules_review(ns)`` for some namespace, and nothing more."""
    try:
        document = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        return False
    if not isinstance(document, dict):
        return False
    spec = document.get("spec")
    namespace = spec.get("namespace") if isinstance(spec, dict) else None
    return (
        isinstance(namespace, str)
        and len(namespace) <= 63
        and _NAMESPACE.fullmatch(namespace) is not None
        and body == rules_review(namespace)
    )


def check_read_only(method: str, path: str, body: bytes | None) -> None:
    """Refuse (``ReadOnlyViolation``) anything but a GET without a body, or the rules question."""
    if method == "GET" and body is None:
        return
    if method == "POST" and path == RULES_REVIEW_PATH and _is_rules_question(body):
        return
    raise ReadOnlyViolation(f"refused {method} {path}: Aetherius only reads from a cluster")


# Segments that start alphanumeric (so never "." or ".."), with no escape, query or fragment:
# what the kind table and checked names make.
_SAFE_PATH = re.compile(r"(/[A-Za-z0-9][A-Za-z0-9._-]*)+")


# NB: defined here, not with the roles' metrics in ``ops``: ``ops`` (health checks) reads through
# this client, and the kube room imports nothing above it.
KUBE_REQUESTS = Counter("aetherius_kube_requests_total", "Requests sent to the API server", ["verb", "code"])


class UnsafePath(ValueError):
    """A request path that is not a plain sequence of name segments; it is never sent."""


class KubeConnectionError(Exception):
    """The API server could not be reached, or the connection broke or went silent."""


class KubeApiError(Exception):
    """The API server answered with an error ``Status``."""

    def __init__(self, *, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def gone(self) -> bool:
        """410: the resourceVersion or continue token is too old; the caller must relist."""
        return self.status == 410


def _clean(params: Params | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


async def _api_error(response: aiohttp.ClientResponse) -> KubeApiError:
    body = await response.read()
    reason, message = response.reason or "Error", body[:500].decode("utf-8", "replace")
    try:
        status_doc = orjson.loads(body)
        if isinstance(status_doc, dict):
            reason = str(status_doc.get("reason") or reason)
            message = str(status_doc.get("message") or message)
    except orjson.JSONDecodeError:
        pass
    retry_after: float | None = None
    header = response.headers.get("Retry-After")
    if header:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    return KubeApiError(status=response.status, reason=reason, message=message, retry_after=retry_after)


class KubeClient:
    """One API server, one connection pool, one token bucket."""

    def __init__(
        self,
        *,
        credentials: Credentials,
        qps: float = 50.0,
        burst: int = 100,
        request_timeout: float = 30.0,
    ) -> None:
        self.credentials = credentials
        self.host = credentials.host
        self.limiter = TokenBucket(qps=qps, burst=burst)
        self.request_timeout = request_timeout
        self.requests_sent = 0
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    async def from_settings(cls, settings: KubeSettings) -> KubeClient:
        credentials = await load_credentials(
            in_cluster=settings.in_cluster, kubeconfig=settings.kubeconfig, context=settings.context
        )
        return cls(
            credentials=credentials,
            qps=settings.qps,
            burst=settings.burst,
            request_timeout=settings.request_timeout.total_seconds(),
        )

    @classmethod
    async def from_kubeconfig(cls, path: Path, *, context: str | None = None, **kwargs: Any) -> KubeClient:
        credentials = await load_credentials(kubeconfig=path, context=context)
        return cls(credentials=credentials, **kwargs)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.credentials.ssl_context, limit=64)
            self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        accept: str = "application/json",
        body: bytes | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        check_read_only(method, path, body)
        if not _SAFE_PATH.fullmatch(path):
            # NB: paths are built from the kind table with checked names (gateway/kinds.py); one
            # that could be read differently by the server (a dot segment, an escape, a query)
            # means a name slipped through, and is refused rather than sent.
            raise UnsafePath(f"refused GET {path[:200]!r}: not a plain API path")
        await self.limiter.acquire()
        headers = {"Accept": accept, "User-Agent": "aetherius"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        authorization = await self.credentials.authorization()
        if authorization:
            headers["Authorization"] = authorization
        self.requests_sent += 1
        try:
            async with self._get_session().request(
                method,
                self.host + path,
                params=_clean(params),
                data=body,
                headers=headers,
                timeout=timeout or aiohttp.ClientTimeout(total=self.request_timeout),
            ) as response:
                KUBE_REQUESTS.labels(verb=method, code=str(response.status)).inc()
                if response.status >= 400:
                    raise await _api_error(response)
                yield response
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            KUBE_REQUESTS.labels(verb=method, code="connection_error").inc()
            raise KubeConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def get_bytes(
        self,
        path: str,
        *,
        params: Params | None = None,
        max_bytes: int | None = None,
        accept: str = "application/json",
    ) -> bytes:
        """The raw body, optionally cut at ``max_bytes`` (pod logs can be large).

        ``accept`` is ``METADATA_LIST``/``METADATA_OBJECT`` for metadata-only reads; the caller
        then checks the kind with ``check_metadata_only`` before using the body.
        """
        async with self._request("GET", path, params=params, accept=accept) as response:
            if max_bytes is None:
                return await response.read()
            return await response.content.read(max_bytes)

    async def review_own_rules(self, namespace: str) -> dict[str, Any]:
        """The ``SelfSubjectRulesReview`` of these credentials in ``namespace`` (the one POST).

        The server answers with the rules it finds and keeps nothing: a question, not a write.
        """
        async with self._request("POST", RULES_REVIEW_PATH, body=rules_review(namespace)) as response:
            return self._decode(RULES_REVIEW_PATH, await response.read(), "application/json")

    async def get_json(
        self, path: str, *, params: Params | None = None, metadata_only: bool = False
    ) -> dict[str, Any]:
        """One decoded document; ``metadata_only`` for a single object's ``PartialObjectMetadata``."""
        accept = METADATA_OBJECT if metadata_only else "application/json"
        return self._decode(path, await self.get_bytes(path, params=params, accept=accept), accept)

    @staticmethod
    def _decode(path: str, body: bytes, accept: str) -> dict[str, Any]:
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise KubeConnectionError(f"GET {path}: the server sent invalid JSON: {exc}") from None
        if not isinstance(decoded, dict):
            raise KubeConnectionError(f"GET {path}: expected a JSON object")
        check_metadata_only(path, decoded, accept)
        return decoded

    async def list_pages(
        self, path: str, *, params: Params | None = None, limit: int = 500, metadata_only: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each page of a paged LIST; the last page carries the list's resourceVersion.

        A 410 on a ``continue`` token (the snapshot expired) is raised to the caller, who must
        restart the list: pages from two snapshots must not be mixed. ``metadata_only``: pages
        are ``PartialObjectMetadataList`` (items carry ``kind``/``apiVersion``/``metadata`` only).
        """
        accept = METADATA_LIST if metadata_only else "application/json"
        query: dict[str, str | int | bool | None] = dict(params or {})
        query["limit"] = limit
        while True:
            page = self._decode(path, await self.get_bytes(path, params=query, accept=accept), accept)
            yield page
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            query["continue"] = token

    async def list_all(
        self, path: str, *, params: Params | None = None, limit: int = 500, metadata_only: bool = False
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item of a LIST and its resourceVersion (the point to watch from)."""
        items: list[dict[str, Any]] = []
        resource_version = ""
        async for page in self.list_pages(path, params=params, limit=limit, metadata_only=metadata_only):
            items.extend(page.get("items") or [])
            resource_version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        return items, resource_version

    @asynccontextmanager
    async def stream_lines(
        self, path: str, *, params: Params | None = None, inactivity_timeout: float = 90.0
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a streaming GET (watch, follow logs) and yield its newline-delimited lines.

        Every read has ``inactivity_timeout``: a half-open connection that sends nothing raises
        ``KubeConnectionError`` instead of hanging forever.
        """
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.request_timeout, sock_read=inactivity_timeout
        )
        async with self._request("GET", path, params=params, timeout=timeout) as response:
            yield _lines(response, path)

    @asynccontextmanager
    async def stream_line_blocks(
        self, path: str, *, params: Params | None = None, inactivity_timeout: float = 90.0
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Like ``stream_lines``, but the complete lines of each received chunk as one block
        (joined by ``\n``, without the last one).

        A watch delivers hundreds of events per chunk: the Watcher decodes a block in one call,
        without cutting it into lines first.
        """
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.request_timeout, sock_read=inactivity_timeout
        )
        async with self._request("GET", path, params=params, timeout=timeout) as response:
            yield _line_blocks(response, path)


def check_metadata_only(path: str, document: dict[str, Any], accept: str) -> None:
    """Refuse a body that is not the metadata-only form asked for (a server ignoring ``as=``)."""
    wanted = _METADATA_KINDS.get(accept)
    if wanted is None:
        return
    kind = document.get("kind")
    if kind != wanted or not str(document.get("apiVersion", "")).startswith("meta.k8s.io/"):
        raise KubeConnectionError(f"GET {path}: asked for {wanted}, the server sent {kind!r}")
    items = document.get("items") if wanted == "PartialObjectMetadataList" else [document]
    for item in items or ():
        if not isinstance(item, dict) or set(item) - {"kind", "apiVersion", "metadata"}:
            raise KubeConnectionError(f"GET {path}: a {wanted} item carries more than metadata")


async def _lines(response: aiohttp.ClientResponse, path: str) -> AsyncIterator[bytes]:
    async for block in _line_blocks(response, path):
        for line in block.split(b"\n"):
            if line:
                yield line


async def _line_blocks(response: aiohttp.ClientResponse, path: str) -> AsyncIterator[bytes]:
    pending = b""
    try:
        async for chunk in response.content.iter_any():
            end = chunk.rfind(b"\n")
            if end < 0:
                pending += chunk
                continue
            block = pending + chunk[:end] if pending else chunk[:end]
            pending = chunk[end + 1 :]
            if block.strip(b"\n"):
                yield block
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise KubeConnectionError(f"stream {path}: {type(exc).__name__}: {exc}") from exc
    if pending.strip():
        yield pending
