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
    assert report["rps"] > 0 and report["p99_ms"] > 0 and report["incidents"] == 200
    assert report["list"]["errors"] == 0 and report["incident"]["errors"] == 0
    assert report["generator"] in ("wrk", "httpx") and (client == "auto" or report["generator"] == client)
    assert report["list"]["server_cpu_ms_per_request"] > 0
