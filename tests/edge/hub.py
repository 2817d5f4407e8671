"""A central NATS hub of a test's own: JetStream, one nkey user for central, one per member cluster.

The users' permissions are exactly ``ClusterSubjects.permissions()``: what the server enforces in
these tests is what a deployment gets.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import nats
import nkeys
import pytest
import yaml

from aetherius.bus.nats import NatsBus, NatsIdentity
from aetherius.config import MessageBusSettings
from aetherius.fleet.subjects import ClusterSubjects
from tests.orchestrator.processes import Replica
from tests.services import free_port, wait_for_port


def new_seed() -> str:
    return nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()


def public_key(seed: str) -> str:
    return nkeys.from_seed(seed.encode()).public_key.decode()


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
        self.port = free_port()
        self.tls = tls  # (certificate, key): clients must dial tls://
        self.ws_port = free_port() if websocket else 0
        self.central_seed = new_seed()
        self.seeds: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def settings(self) -> MessageBusSettings:
        update: dict[str, object] = {"url": self.url}
        if self.tls:
            update["tls_ca_file"] = self.tls[0]
        return self.bus.model_copy(update=update)

    def add(self, cluster: str) -> str:
        """The agent token of a new member cluster (the config is rewritten; ``reload`` applies it)."""
        self.seeds[cluster] = new_seed()
        self._write()
        return f"{cluster}.{self.seeds[cluster]}"

    def remove(self, cluster: str) -> None:
        del self.seeds[cluster]
        self._write()

    def _write(self) -> None:
        users = [{"nkey": public_key(self.central_seed)}]
        for cluster, seed in self.seeds.items():
            permissions = ClusterSubjects.of(cluster, self.bus).permissions()
            users.append({"nkey": public_key(seed), "permissions": permissions})
        store = self.directory / "js"
        config = (
            f"listen: 127.0.0.1:{self.port}\n"
            f"jetstream {{ store_dir: {json.dumps(str(store))} }}\n"
            f"authorization {{ users = {json.dumps(users, indent=1)} }}\n"
        )
        if self.tls:
            cert, key = self.tls
            config += f"tls {{ cert_file: {json.dumps(str(cert))}, key_file: {json.dumps(str(key))} }}\n"
        if self.ws_port:
            # NB: plain WebSocket on loopback in tests; a deployment terminates TLS (wss://) on 443.
            config += f'websocket {{ listen: "127.0.0.1:{self.ws_port}", no_tls: true }}\n'
        (self.directory / "hub.conf").write_text(config, encoding="utf-8")

    def start(self) -> None:
        self._write()
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.directory / "hub.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "hub.log").open("ab"),
        )
        wait_for_port("127.0.0.1", self.port)

    async def reload(self, *, timeout: float = 10.0) -> None:
        """Apply the users file, and return once the server admits every member cluster's key.

        NB: nats-server applies a reload asynchronously after SIGHUP; a test that connects at
        once may race it.
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        for cluster, seed in self.seeds.items():
            inbox = ClusterSubjects.of(cluster, self.bus).inbox_prefix
            while True:
                try:
                    nc = await nats.connect(
                        self.url, nkeys_seed_str=seed, inbox_prefix=inbox, allow_reconnect=False,
                        max_reconnect_attempts=0, connect_timeout=1, tls=self._tls_context(),
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

    async def provision(self) -> None:
        """What central does at start: the streams and the KV bucket (agents may not)."""
        bus = self.central_bus(name="provision")
        await bus.connect()
        await bus.key_value(self.bus.kv_bucket)
        await bus.close()


def spawn_agent(directory: Path, *, hub_url: str, token: str, kubeconfig: Path, n: int) -> Replica:
    """The real ``aetherius agent --mode edge`` process, its token in ``AGENT_TOKEN``; logs in
    ``directory/agent-<n>.log``."""
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
            ],
            env={**os.environ, "AGENT_TOKEN": token},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return Replica(process=process, log=log)
