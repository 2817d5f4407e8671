"""A central nats-server of a test's own, configured the way ``aetherius cluster add`` configures one.

JetStream on a free port, and every client authenticated by the users file the production
``Registry`` writes: central's nkey, then one user per member cluster with exactly
``ClusterSubjects.permissions()``. So what the server enforces in these tests is what a deployment
gets. Optionally it dials only over TLS, or listens for WebSocket too. ``reload`` signals it as
``aetherius cluster add/remove --nats-pid-file`` does. The server's log stays in the test's
directory (``nats.log``): the first thing to read when a test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.aio.client import Client

from aetherius.bus.nats import NatsBus, NatsIdentity
from aetherius.config import MessageBusSettings
from aetherius.fleet.identity import EdgeCredential, central_seed
from aetherius.fleet.registry import Registry, reload_server, write_server_config
from tests.orchestrator.processes import Replica
from tests.services import free_port, wait_for_port

# How long a test waits for something the server will do; reaching it means a failure, never a
# timing assertion.
PATIENCE = 20.0


class Hub:
    def __init__(
        self,
        directory: Path,
        *,
        bus: MessageBusSettings | None = None,
        tls: tuple[Path, Path] | None = None,
        websocket: bool = False,
    ) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not installed (apt-get install nats-server)", pytrace=False)
        self.binary = binary
        self.directory = directory
        self.bus = bus or MessageBusSettings(reconnect_delay="0.2s", publish_timeout="3s", ack_wait="5s")  # type: ignore[arg-type]
        self.registry = Registry(directory / "auth", bus=self.bus)
        self.config = directory / "server.conf"
        self.pid_file = directory / "nats.pid"
        self.port = free_port()
        self.tls = tls  # (certificate, key): clients must dial tls://
        self.ws_port = free_port() if websocket else 0
        self.leaf_port = free_port()  # leaf members' servers connect here
        # The credentials ``add`` handed out: ``reload`` waits until the server admits each.
        self.credentials: dict[str, EdgeCredential] = {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def central_seed(self) -> str:
        """Central's own seed (``<auth>/central.nk``), made by the registry on first use."""
        return central_seed(self.registry.auth_dir, create=True)

    def settings(self) -> MessageBusSettings:
        update: dict[str, object] = {"url": self.url}
        if self.tls:
            update["tls_ca_file"] = self.tls[0]
        return self.bus.model_copy(update=update)

    @property
    def leaf_url(self) -> str:
        return f"nats-leaf://127.0.0.1:{self.leaf_port}"

    def add(self, cluster: str, *, leaf_domain: str = "") -> str:
        """The agent token of a new member cluster (a fresh key; ``reload`` applies it)."""
        credential = self.registry.add(cluster, rotate=True, leaf_domain=leaf_domain)
        assert credential is not None
        self.credentials[cluster] = credential
        return credential.token

    def remove(self, cluster: str) -> None:
        self.registry.remove(cluster)
        self.credentials.pop(cluster, None)

    def _write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.registry.write_users_file()
        write_server_config(
            self.config,
            port=self.port,
            store_dir=self.directory / "jetstream",
            users_file=self.registry.users_file,
            pid_file=self.pid_file,
            leafnode_port=self.leaf_port,
        )
        extra = ""
        if self.tls:
            cert, key = self.tls
            extra += f"tls {{ cert_file: {json.dumps(str(cert))}, key_file: {json.dumps(str(key))} }}\n"
        if self.ws_port:
            # NB: plain WebSocket on loopback in tests; a deployment terminates TLS (wss://) on 443.
            extra += f'websocket {{ listen: "127.0.0.1:{self.ws_port}", no_tls: true }}\n'
        if extra:
            with self.config.open("a", encoding="utf-8") as handle:
                handle.write(extra)

    def start(self) -> None:
        self._write()
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config), "-l", str(self.directory / "nats.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port)

    async def reload(self, *, timeout: float = PATIENCE) -> None:
        """Apply the users file, and return once the server admits every key ``add`` handed out.

        NB: nats-server applies a reload asynchronously after SIGHUP; a test that connects at
        once may race it.
        """
        reload_server(self.pid_file)
        deadline = time.monotonic() + timeout
        leaf_members = {record.cluster for record in self.registry.leaf_members()}
        for credential in self.credentials.values():
            if credential.cluster in leaf_members:
                continue  # a leaf connection's user may not connect as a client
            while True:
                try:
                    nc = await nats.connect(
                        self.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=1,
                        tls=self._tls_context(), **credential.connect_options(self.bus),
                    )  # fmt: skip
                    await nc.close()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)

    def _tls_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.tls[0])) if self.tls else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def central_bus(self, *, name: str = "central") -> NatsBus:
        return NatsBus(self.settings(), name=name, identity=NatsIdentity(seed=self.central_seed))

    async def connect_central(self, **options: Any) -> Client:
        """A bare client as central's user (for what the bus API does not expose)."""
        return await nats.connect(
            self.url,
            allow_reconnect=False,
            nkeys_seed_str=self.central_seed,
            tls=self._tls_context(),
            **options,
        )

    async def provision(self) -> None:
        """What central does at start: the streams and the KV bucket (agents may not)."""
        bus = self.central_bus(name="provision")
        await bus.connect()
        await bus.key_value(self.bus.kv_bucket)
        await bus.close()


def spawn_agent(
    directory: Path,
    *,
    hub_url: str,
    token: str,
    kubeconfig: Path,
    n: int,
    ready_file: Path | None = None,
    health_port: int = 0,
) -> Replica:
    """The real ``aetherius agent --mode edge`` process, its token in ``AGENT_TOKEN``; logs in
    ``directory/agent-<n>.log``; with ``ready_file``, its probes' ports are written there."""
    config = directory / f"agent-{n}" / "app.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        yaml.safe_dump(
            {
                "log_format": "json",
                "message_bus": {"url": hub_url, "reconnect_delay": "0.2s", "publish_timeout": "3s"},
                "metrics": {"port": 0},
                "health": {"port": 0},
                "fleet": {"mode": "edge"},
                "watcher": {"checkpoint_interval": "0.2s", "heartbeat_interval": "0.5s"},
            }
        ),
        encoding="utf-8",
    )
    log = directory / f"agent-{n}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aetherius",
                "agent",
                "--mode",
                "edge",
                "--config",
                str(config),
                "--kubeconfig",
                str(kubeconfig),
                *(["--ready-file", str(ready_file)] if ready_file else []),
                *(["--health-port", str(health_port)] if health_port else []),
            ],
            env={**os.environ, "AGENT_TOKEN": token},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return Replica(process=process, log=log)
