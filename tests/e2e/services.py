"""Private PostgreSQL and Redis servers a fault test may stop and start again.

PostgreSQL: ``initdb``/``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` into a temporary directory
owned by ``postgres`` (initdb refuses root), on a free port, trust auth on 127.0.0.1 only.
Redis: ``redis-server --port <free> --save ''`` (nothing persisted: a restart loses every key,
which is the point of the Redis-down test).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import pytest

from tests.services import free_port, wait_for_port
from tests.store.databases import _upgrade


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"{name} not found under /usr/lib/postgresql/*/bin (install postgresql)", pytrace=False)
    return found[-1]


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    command = list(args) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)


class PrivatePostgres:
    def __init__(self, _hint: Path) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="aeth-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()

    def __enter__(self) -> PrivatePostgres:
        if os.geteuid() == 0:  # NB: as anyone else, the directory is already the user's own
            shutil.chown(self.directory, user="postgres")
        _as_postgres(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        _as_postgres(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "aeth")
        asyncio.run(_upgrade(self.database_url()))
        return self

    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/aeth"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        _as_postgres(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "log"),
            "-w",
            "start",
        )
        wait_for_port("127.0.0.1", self.port)

    def stop(self) -> None:
        _as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed", pytrace=False)
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
