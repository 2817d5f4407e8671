"""A central nats-server of a test's own, configured the way ``aetherius cluster add`` configures one.

It runs on a free port with JetStream and the generated ``users.conf`` (so every client must hold
a registered nkey), and the central user provisions what central provisions in production: the
Signals stream and the state KV bucket (direct get on). Tests reload it with SIGHUP, as
``aetherius cluster remove --nats-pid-file`` does.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from aetherius.config import MessageBusSettings
from aetherius.fleet.identity import EdgeCredential, central_connect_options
from aetherius.fleet.registry import Registry, write_server_config
from tests.services import free_port, wait_for_port

BUS = MessageBusSettings()
STREAM = BUS.stream  # AETHERIUS_SIGNALS
BUCKET = BUS.kv_bucket  # aetherius_state
# How long a test waits for something the server will do; reaching it means a failure, never a
# timing assertion.
PATIENCE = 20.0


class CentralNats:
    def __init__(self, root: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not installed (apt-get install nats-server)", pytrace=False)
        self.binary = binary
        self.root = root
        self.registry = Registry(root / "auth", bus=BUS)
        self.port = free_port()
        self.config = root / "server.conf"
        self.pid_file = root / "nats.pid"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.registry.write_users_file()
        write_server_config(
            self.config,
            port=self.port,
            store_dir=self.root / "jetstream",
            users_file=self.registry.users_file,
            pid_file=self.pid_file,
        )
        # The server's log stays in the test's directory: the first thing to read when one fails.
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config), "-l", str(self.root / "nats.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    async def connect_central(self) -> Client:
        return await nats.connect(
            self.url, allow_reconnect=False, **central_connect_options(auth_dir=self.registry.auth_dir)
        )

    async def provision(self) -> None:
        """What central creates: the Signals stream and the KV bucket, as the central user."""
        nc = await self.connect_central()
        try:
            js = nc.jetstream()
            await js.add_stream(name=STREAM, subjects=[f"{BUS.subject_prefix}.>"])
            await js.create_key_value(bucket=BUCKET, history=1, direct=True)
        finally:
            await nc.close()


@dataclass
class Edge:
    """An edge agent's connection, with every asynchronous error the server sent it, in order."""

    credential: EdgeCredential
    nc: Client
    errors: asyncio.Queue[Exception] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def next_error(self) -> str:
        return str(await asyncio.wait_for(self.errors.get(), timeout=PATIENCE))

    async def refused(self, action: Callable[[], Awaitable[Any]]) -> str:
        """Run ``action`` and return the error the server answered it with."""
        await action()
        await self.nc.flush(timeout=PATIENCE)
        return await self.next_error()


async def connect_edge(url: str, credential: EdgeCredential, **options: Any) -> Edge:
    errors: asyncio.Queue[Exception] = asyncio.Queue()
    closed = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        errors.put_nowait(exc)

    async def on_closed() -> None:
        closed.set()

    nc = await nats.connect(
        url,
        allow_reconnect=False,
        error_cb=on_error,
        closed_cb=on_closed,
        **credential.connect_options(BUS),
        **options,
    )
    return Edge(credential=credential, nc=nc, errors=errors, closed=closed)


def violation(kind: str, subject: str) -> str:
    """The exact refusal nats-py reports for a denied publish or subscription (it lower-cases it)."""
    return f'nats: permissions violation for {kind} to "{subject.lower()}"'
