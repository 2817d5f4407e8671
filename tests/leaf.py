"""A member cluster's leaf nats-server of a test's own, configured by ``leaf_server_config``.

JetStream in its own domain with its store in the test's directory, clients authenticated by
the cluster's nkey, and a leaf connection to the hub's leafnode listener with the cluster's leaf
login: what the leaf mode's documentation deploys. Its log is ``nats.log`` in its directory.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from aetherius.fleet.identity import EdgeCredential
from aetherius.fleet.leaf import leaf_server_config
from tests.hub import Hub
from tests.services import free_port, wait_for_port


class LeafServer:
    def __init__(self, directory: Path, *, hub: Hub, credential: EdgeCredential, domain: str) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not installed (apt-get install nats-server)", pytrace=False)
        self.binary = binary
        self.directory = directory
        self.domain = domain
        self.port = free_port()
        self.config = directory / "leaf.conf"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            leaf_server_config(
                credential,
                domain=domain,
                central_leaf_url=hub.leaf_url,
                listen=f"127.0.0.1:{self.port}",
                store_dir=str(directory / "jetstream"),
            ),
            encoding="utf-8",
        )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config), "-l", str(self.directory / "nats.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        path = self.directory / "nats.log"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""
