"""The kubelet's Summary API (``GET /stats/summary`` on its authenticated port), decoded into only
what pressure needs.

The kubelet's read-only port (10255) is deprecated and off on most clusters; the agent uses the
authenticated port with its ServiceAccount token, which RBAC allows through ``nodes/stats`` (``get``).
``nodes/proxy`` is never needed: it would allow exec into any pod of the node.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import msgspec

__all__ = ["FsStats", "KubeletClient", "KubeletError", "NodeStats", "PodStats", "Summary"]


class FsStats(msgspec.Struct, kw_only=True):
    availableBytes: int | None = None
    capacityBytes: int | None = None
    usedBytes: int | None = None
    inodesFree: int | None = None
    inodes: int | None = None


class MemoryStats(msgspec.Struct, kw_only=True):
    availableBytes: int | None = None
    workingSetBytes: int | None = None
    usageBytes: int | None = None


class RuntimeStats(msgspec.Struct, kw_only=True):
    imageFs: FsStats | None = None


class RlimitStats(msgspec.Struct, kw_only=True):
    maxpid: int | None = None
    curproc: int | None = None


class NodeStats(msgspec.Struct, kw_only=True):
    nodeName: str = ""
    memory: MemoryStats | None = None
    fs: FsStats | None = None
    runtime: RuntimeStats | None = None
    rlimit: RlimitStats | None = None


class PodRef(msgspec.Struct, kw_only=True):
    name: str = ""
    namespace: str = ""
    uid: str = ""


class ContainerStats(msgspec.Struct, kw_only=True):
    name: str = ""
    memory: MemoryStats | None = None


class PVCRef(msgspec.Struct, kw_only=True):
    name: str = ""
    namespace: str = ""


class VolumeStats(msgspec.Struct, kw_only=True):
    name: str = ""
    availableBytes: int | None = None
    capacityBytes: int | None = None
    inodesFree: int | None = None
    inodes: int | None = None
    pvcRef: PVCRef | None = None


class ProcessStats(msgspec.Struct, kw_only=True):
    process_count: int | None = None


class PodStats(msgspec.Struct, kw_only=True, rename={"ephemeral_storage": "ephemeral-storage"}):
    podRef: PodRef = msgspec.field(default_factory=PodRef)
    containers: list[ContainerStats] = []
    memory: MemoryStats | None = None
    ephemeral_storage: FsStats | None = None
    process_stats: ProcessStats | None = None
    volume: list[VolumeStats] = []


class Summary(msgspec.Struct, kw_only=True):
    node: NodeStats = msgspec.field(default_factory=NodeStats)
    pods: list[PodStats] = []


_summary = msgspec.json.Decoder(Summary)


class KubeletError(Exception):
    """The kubelet could not be read (unreachable, refused, answered garbage): said, never fatal."""


class KubeletClient:
    """GET-only client of one kubelet: bearer token, TLS verified against ``ca_file``.

    The token is read from its file on every request: a projected ServiceAccount token rotates.
    NB: aiohttp, which the agent already carries for the API client and its health server: one
    HTTP stack less on every node.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token_file: str,
        ca_file: str = "",
        insecure: bool = False,
        timeout: float = 5.0,
    ) -> None:
        if not base_url.startswith("https://"):
            raise ValueError(f"kubelet URL {base_url!r}: only the authenticated https port is read")
        self._ssl: ssl.SSLContext | bool = (
            False if insecure else ssl.create_default_context(cafile=ca_file or None)
        )
        self.base_url = base_url.rstrip("/")
        self.token_file = token_file
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def summary(self) -> Summary:
        body = await self._get("/stats/summary")
        try:
            return _summary.decode(body)
        except msgspec.DecodeError as exc:
            raise KubeletError(f"kubelet summary not understood: {exc}") from None

    async def _get(self, path: str) -> bytes:
        try:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()  # noqa: ASYNC240 (a small secret file)
        except OSError as exc:
            raise KubeletError(
                f"cannot read the token file {self.token_file}: {exc.strerror or exc}"
            ) from None
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(
                f"{self.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, ssl=self._ssl
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeletError(f"kubelet {self.base_url} unreachable: {type(exc).__name__}: {exc}") from None
        if status != 200:
            text = body[:200].decode("utf-8", "replace").replace("\n", " ")
            resource = "nodes/metrics" if path.startswith("/metrics") else "nodes/stats"
            hint = f" (RBAC: the agent needs get on {resource})" if status in (401, 403) else ""
            raise KubeletError(f"kubelet answered {status}{hint}: {text}")
        return body

    async def cadvisor(self) -> str:
        """``GET /metrics/cadvisor`` (Prometheus text; RBAC ``nodes/metrics``): CPU throttling."""
        body = await self._get("/metrics/cadvisor")
        return body.decode("utf-8", "replace")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
