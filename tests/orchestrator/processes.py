"""Orchestrator replicas as real processes (``python -m aetherius orchestrator``) for tests.

Each test gets its own stream, subjects and KV bucket (random suffix) in an ``app.yaml`` of its
own; replicas log to files the test can read when something goes wrong.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aetherius.store import IncidentFilters, Store


def bus_section(url: str) -> dict[str, Any]:
    suffix = secrets.token_hex(4)
    return {
        "url": url,
        "stream": f"TEST_ORCH_{suffix}",
        "subject_prefix": f"testorch{suffix}.signals",
        "kv_bucket": f"state_orch_{suffix}",
        "ack_wait": "5s",
        "publish_timeout": "3s",
        "reconnect_delay": "0.2s",
        "max_reconnect_attempts": -1,
    }


def write_app_yaml(directory: Path, *, bus: dict[str, Any], **sections: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "log_format": "json",
        "message_bus": bus,
        "metrics": {"enabled": False},
        "health": {"port": 0},
        "orchestrator": {"pull_timeout": "0.5s", "recheck_interval": "1h", "resolve_after": "1h"},
    }
    for key, value in sections.items():
        merged = {**document.get(key, {}), **value} if isinstance(value, dict) else value
        document[key] = merged
    path = directory / "app.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def terminate(self, *, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@dataclass
class Replicas:
    config: Path
    kubeconfig: Path
    directory: Path
    extra: Sequence[str] = ()
    started: list[Replica] = field(default_factory=list)

    def start(self, n: int = 1) -> list[Replica]:
        fresh = []
        for _ in range(n):
            index = len(self.started)
            log = self.directory / f"replica-{index}.log"
            handle = log.open("wb")
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aetherius",
                    "orchestrator",
                    "--config",
                    str(self.config),
                    "--kubeconfig",
                    str(self.kubeconfig),
                    *self.extra,
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**os.environ},
            )
            handle.close()
            replica = Replica(process=process, log=log)
            self.started.append(replica)
            fresh.append(replica)
        return fresh

    def stop_all(self) -> list[int]:
        return [r.terminate() for r in self.started]

    def kill_all(self) -> None:
        for replica in self.started:
            replica.kill()

    def logs(self) -> str:
        return "\n".join(f"--- replica {i}\n{r.text()[-3000:]}" for i, r in enumerate(self.started))


async def incidents_of(store: Store, cluster: str) -> list[Any]:
    page = await store.list_incidents(IncidentFilters(cluster_id=cluster), limit=500)
    return list(page.items)
