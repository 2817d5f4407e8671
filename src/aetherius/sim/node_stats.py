"""A kubelet's Summary API for the simulated cluster's nodes: ``GET /stats/summary`` over TLS with
bearer-token auth, as the kubelet's authenticated port (10250) serves it.

One server per simulated node, on loopback, with a certificate made at start (its CA file is
written for the client to verify against). Each node's figures follow a timeline: what is left
of memory, disk, inodes or PIDs falls at a set rate from a start value, so a test can watch a node
being pushed towards eviction (and a pressure-free node stay flat). Requests without the token get
401, as the kubelet's webhook authorizer does; a node can be made to answer 500 or garbage.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Falling", "KubeletStatsServer", "SimPod"]

GiB = 1024**3
MiB = 1024**2


@dataclass
class Falling:
    """A figure that starts at ``start`` and falls by ``per_minute`` (never below ``floor``)."""

    start: float
    per_minute: float = 0.0
    floor: float = 0.0

    def at(self, minutes: float) -> float:
        return max(self.floor, self.start - self.per_minute * minutes)


@dataclass
class SimPod:
    namespace: str
    name: str
    uid: str
    working_set: int = 64 * MiB
    containers: tuple[str, ...] = ("app",)
    ephemeral_used: int = 10 * MiB
    processes: int = 5
    throttled: float = 0.0  # share of each container's CPU periods spent throttled
    # (volume, claim, capacity bytes, available bytes) of its PersistentVolumeClaims
    claims: tuple[tuple[str, str, int, int], ...] = ()


@dataclass
class SimNode:
    name: str
    memory_capacity: int = 16 * GiB
    memory_available: Falling = field(default_factory=lambda: Falling(8 * GiB))
    fs_capacity: int = 100 * GiB
    fs_available: Falling = field(default_factory=lambda: Falling(60 * GiB))
    inodes: int = 6_000_000
    inodes_free: Falling = field(default_factory=lambda: Falling(5_000_000))
    imagefs_capacity: int = 100 * GiB
    imagefs_available: Falling = field(default_factory=lambda: Falling(70 * GiB))
    max_pid: int = 4_194_304
    processes: Falling = field(default_factory=lambda: Falling(600))  # "falling" by a negative rate grows
    pods: list[SimPod] = field(default_factory=list)
    fault: str = ""  # "" | "500" | "garbage"

    def cadvisor(self, minutes: float) -> str:
        """The CFS counters of each container as the kubelet's /metrics/cadvisor writes them: 10
        periods a second since the timeline began, ``throttled`` of them throttled."""
        periods = int(minutes * 60 * 10)
        lines = [
            "# HELP container_cpu_cfs_periods_total Number of elapsed enforcement period intervals.",
            "# TYPE container_cpu_cfs_periods_total counter",
        ]
        for p in self.pods:
            for c in p.containers:
                labels = f'container="{c}",id="/kubepods/pod{p.uid}/{c}",image="x",name="{c}",namespace="{p.namespace}",pod="{p.name}"'
                lines.append(f"container_cpu_cfs_periods_total{{{labels}}} {periods} 1700000000000")
                lines.append(
                    f"container_cpu_cfs_throttled_periods_total{{{labels}}} {int(periods * p.throttled)} 1700000000000"
                )
        return "\n".join(lines) + "\n"

    def summary(self, minutes: float) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        available = int(self.memory_available.at(minutes))
        processes = int(self.processes.at(minutes))
        return {
            "node": {
                "nodeName": self.name,
                "startTime": "2026-11-01T00:00:00Z",
                "memory": {
                    "time": now,
                    "availableBytes": available,
                    "usageBytes": self.memory_capacity - available,
                    "workingSetBytes": self.memory_capacity - available,
                },
                "fs": {
                    "time": now,
                    "availableBytes": int(self.fs_available.at(minutes)),
                    "capacityBytes": self.fs_capacity,
                    "usedBytes": self.fs_capacity - int(self.fs_available.at(minutes)),
                    "inodesFree": int(self.inodes_free.at(minutes)),
                    "inodes": self.inodes,
                },
                "runtime": {
                    "imageFs": {
                        "time": now,
                        "availableBytes": int(self.imagefs_available.at(minutes)),
                        "capacityBytes": self.imagefs_capacity,
                    }
                },
                "rlimit": {"time": now, "maxpid": self.max_pid, "curproc": processes},
            },
            "pods": [
                {
                    "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                    "startTime": "2026-11-01T00:00:00Z",
                    "containers": [
                        {"name": c, "memory": {"workingSetBytes": p.working_set // len(p.containers)}}
                        for c in p.containers
                    ],
                    "memory": {"time": now, "workingSetBytes": p.working_set},
                    "ephemeral-storage": {"usedBytes": p.ephemeral_used},
                    "process_stats": {"process_count": p.processes},
                    "volume": [
                        {
                            "name": volume,
                            "capacityBytes": capacity,
                            "availableBytes": available,
                            "inodes": 1_000_000,
                            "inodesFree": 900_000,
                            "pvcRef": {"name": claim, "namespace": p.namespace},
                        }
                        for volume, claim, capacity, available in p.claims
                    ],
                }
                for p in self.pods
            ],
        }


def self_signed_certificate(directory: Path, *, name: str = "aetherius-sim-kubelet") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost: (cert file, key file), named ``name``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class KubeletStatsServer:
    """``async with KubeletStatsServer(nodes, token=...) as server``: ``server.url(node)``,
    ``server.ca_file``; ``server.minutes`` is the timeline's clock (advanced by ``speed``)."""

    def __init__(self, nodes: list[SimNode], *, token: str, speed: float = 1.0) -> None:
        self.nodes = {node.name: node for node in nodes}
        self.token = token
        self.speed = speed
        self.requests = 0
        self.unauthorized = 0
        self._started = time.monotonic()
        self._offset = 0.0
        self._runners: list[web.AppRunner] = []
        self._ports: dict[str, int] = {}
        self._directory = tempfile.TemporaryDirectory(prefix="aetherius-kubelet-")
        self.ca_file = Path()

    @property
    def minutes(self) -> float:
        return self._offset + (time.monotonic() - self._started) * self.speed / 60

    def advance(self, minutes: float) -> None:
        """Move the timeline on (tests push a node towards pressure without waiting)."""
        self._offset += minutes

    def url(self, node: str) -> str:
        return f"https://127.0.0.1:{self._ports[node]}"

    async def __aenter__(self) -> KubeletStatsServer:
        cert, key = self_signed_certificate(Path(self._directory.name))
        self.ca_file = cert
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        for name in self.nodes:
            app = web.Application()
            app.router.add_get("/stats/summary", self._handler(name))
            app.router.add_get("/metrics/cadvisor", self._handler(name, cadvisor=True))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
            await site.start()
            server = site._server
            assert server is not None and server.sockets  # type: ignore[attr-defined]
            self._ports[name] = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            self._runners.append(runner)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._directory.cleanup()

    def _handler(self, name: str, *, cadvisor: bool = False) -> Any:
        async def summary(request: web.Request) -> web.Response:
            self.requests += 1
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                self.unauthorized += 1
                return web.Response(status=401, text="Unauthorized")
            node = self.nodes[name]
            if node.fault == "500":
                return web.Response(status=500, text="internal error")
            if node.fault == "garbage":
                return web.Response(status=200, body=b"{not json", content_type="application/json")
            if cadvisor:
                return web.Response(text=node.cadvisor(self.minutes), content_type="text/plain")
            return web.Response(
                body=orjson.dumps(node.summary(self.minutes)), content_type="application/json"
            )

        return summary
