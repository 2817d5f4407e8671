"""``aetherius sim`` as a process, and the bulk loader benchmarks replay from."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import orjson

from aetherius.kube import KubeClient
from aetherius.sim import SimCluster
from tests.services import free_port, wait_for_port


def test_cli_serves_writes_kubeconfig_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "aetherius", "sim", "--port", str(port), "--scenario", "demo",
         "--kubeconfig-out", str(config), "--speed", "50", "--history", "5000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=20)
        pods = subprocess.run(
            ["kubectl", "--kubeconfig", str(config), "get", "pods", "-n", "shop", "-o", "name"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert pods.returncode == 0, pods.stderr
        assert "pod/cart-" in pods.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in out and str(config) in out


def test_cli_bad_scenario_is_a_one_line_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aetherius", "sim", "--scenario", "no-such-scenario"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no scenario named" in result.stderr


async def test_preload_replays_every_event_once_in_order(tmp_path: Path) -> None:
    async with SimCluster(history_size=5_000) as sim:
        result = sim.preload_events(3_000, namespace="bench")
        assert (result.count, result.last_rv - result.start_rv) == (3_000, 3_000)
        assert len(sim.ledger) == 3_000
        client = await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kc"))
        async with client:
            params = {"watch": True, "resourceVersion": str(result.start_rv), "timeoutSeconds": 1}
            async with client.stream_lines("/api/v1/namespaces/bench/events", params=params) as lines:
                events = [orjson.loads(line) async for line in lines]
            filtered_params = {**params, "fieldSelector": "reason=BackOff,type=Warning"}
            async with client.stream_lines("/api/v1/events", params=filtered_params) as lines:
                backoffs = [orjson.loads(line) async for line in lines]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == list(range(result.first_rv, result.last_rv + 1))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        (entry.type, entry.name) for entry in sim.ledger
    ]
    assert {e["type"] for e in events} == {"ADDED", "MODIFIED"}
    assert backoffs and all(e["object"]["reason"] == "BackOff" for e in backoffs)
    assert all(e["object"]["type"] == "Warning" for e in backoffs)
