"""benchmarks/api.py at smoke size: it runs end to end and prints its JSON (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("client", ["auto", "httpx"])  # auto: wrk when installed
def test_api_benchmark_smoke(client: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.api",
            "--incidents",
            "200",
            "--rate",
            "20",
            "--seconds",
            "1",
            "--json",
            "--client",
            client,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) == {
        "rps",
        "p99_ms",
        "incidents",
        "target_rate",
        "generator",
        "server",
        "list",
        "incident",
        "filtered_list",
        "target_met",
    }
    assert report["incidents"] == 200 and report["target_rate"] == 20
    assert report["generator"] in ("wrk", "httpx") and (client == "auto" or report["generator"] == client)
    assert set(report["server"]) == {"workers", "http", "loop"}
    for name in ("list", "incident", "filtered_list"):
        figures = report[name]
        assert set(figures) == {"rps", "p50_ms", "p99_ms", "errors", "server_cpu_ms_per_request"}, name
        assert figures["errors"] == 0, name
        assert figures["rps"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"], (name, figures)
        assert figures["server_cpu_ms_per_request"] > 0, name
    # The headline figures are the list's, and the verdict is computed from them.
    listing = report["list"]
    assert (report["rps"], report["p99_ms"]) == (listing["rps"], listing["p99_ms"])
    assert report["target_met"] is (listing["p99_ms"] <= 50 and listing["rps"] >= 0.95 * 20)
