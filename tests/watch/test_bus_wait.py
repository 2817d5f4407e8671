"""A watcher started before its bus: it serves its probes meanwhile (not ready: "bus not
connected", alive), connects when the bus comes, and is then ready — never a pod that answers
nothing and is restarted for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from aetherius.sim import SimCluster
from tests.orchestrator.processes import bus_section, write_app_yaml
from tests.services import PrivateNats, free_port
from tests.waiting import until


def _spawn_watcher(config: Path, kubeconfig: Path, *, health_port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "aetherius", "watch", "--config", str(config),
             "--kubeconfig", str(kubeconfig), "--health-port", str(health_port), "--metrics-port", "0"],
            env={**os.environ, "CLUSTER_ID": "early"}, stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def test_a_watcher_waits_for_its_bus_with_its_probes_up(tmp_path: Path) -> None:
    nats = PrivateNats(tmp_path / "js")  # its port is chosen; the server is not started yet
    config = write_app_yaml(tmp_path / "conf", bus=bus_section(nats.url))
    port = free_port()
    log = tmp_path / "watch.log"
    async with SimCluster() as sim:
        kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
        process = _spawn_watcher(config, kubeconfig, health_port=port, log=log)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

                async def probed(path: str, status: int) -> dict[str, Any] | None:
                    try:
                        response = await http.get(path)
                    except httpx.TransportError:
                        return None
                    body: dict[str, Any] = response.json()
                    return body["checks"] if response.status_code == status else None

                def text() -> str:
                    return log.read_text(errors="replace")[-3000:]

                waiting = await until(
                    lambda: probed("/health/ready", 503), timeout=60, what="probes while no bus", explain=text
                )
                assert waiting["dependencies"]["message"] == "bus not connected", waiting
                assert await probed("/health/live", 200) is not None, "alive while it waits"

                nats.start()
                ready = await until(
                    lambda: probed("/health/ready", 200),
                    timeout=60,
                    what="ready once the bus is up",
                    explain=text,
                )
                assert ready["dependencies"]["message"] == "bus connected"
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
            nats.stop()
    assert code == 0, log.read_text(errors="replace")[-3000:]
