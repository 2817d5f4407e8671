"""Real services for tests: the machine's PostgreSQL, Redis and NATS, or private instances.

A test that needs a service fails loudly when it is not there; nothing is skipped. Tests that
stop and restart a service to prove recovery start their own private instance on a free port.
PostgreSQL is shared by concurrent runs, so each user gets a database of its own
(``fresh_postgres_database``), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def require_service(name: str, host: str, port: int) -> None:
    if not port_open(host, port):
        pytest.fail(f"{name} is not answering on {host}:{port}: start it (see .ci/run)", pytrace=False)


def wait_for_port(host: str, port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port, timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


async def _postgres_admin(statement: str) -> None:
    connection = await asyncpg.connect(f"{POSTGRES_DSN}/postgres", timeout=10)
    try:
        await connection.execute(statement, timeout=30)
    finally:
        await connection.close(timeout=10)


async def create_postgres_database(*, prefix: str = "aeth") -> str:
    """Create an empty database with a random name on the shared server and return its URL."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"{prefix}_{secrets.token_hex(6)}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES_DSN}/{name}"


async def drop_postgres_database(url: str) -> None:
    """Drop a database made by ``create_postgres_database``, even with connections left open."""
    name = url.rsplit("/", 1)[1]
    await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def fresh_postgres_database(*, prefix: str = "aeth") -> AsyncIterator[str]:
    """The URL of an empty PostgreSQL database of the caller's own, dropped afterwards."""
    url = await create_postgres_database(prefix=prefix)
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@contextlib.contextmanager
def fresh_postgres_database_blocking(*, prefix: str = "aeth") -> Iterator[str]:
    """``fresh_postgres_database`` for synchronous code: module- and session-scoped fixtures,
    which run outside the per-test event loop."""
    url = asyncio.run(create_postgres_database(prefix=prefix))
    try:
        yield url
    finally:
        asyncio.run(drop_postgres_database(url))


class PrivateNats:
    """A nats-server with JetStream of a test's own, which the test may stop and restart."""

    def __init__(self, store_dir: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not installed (apt-get install nats-server)", pytrace=False)
        self.binary = binary
        self.store_dir = store_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def private_nats(store_dir: Path) -> Iterator[PrivateNats]:
    server = PrivateNats(store_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
