"""Real services for tests: the machine's PostgreSQL, Redis and NATS, or private instances.

A test that needs a service fails loudly when it is not there; nothing is skipped. Tests that
stop and restart a service to prove recovery start their own private instance on a free port.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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
