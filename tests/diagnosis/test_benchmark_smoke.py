"""The scan benchmark runs at smoke size and reports the promised JSON (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.scan import generate

ROOT = Path(__file__).resolve().parents[2]


def test_generated_cluster_is_deterministic_and_mixed() -> None:
    first, second = generate(200), generate(200)
    assert first == second
    kinds = {item["kind"] for item in first["items"]}
    assert {"Pod", "Node", "Service", "Event", "Deployment", "ReplicaSet", "PodLogs"} <= kinds
    assert sum(1 for item in first["items"] if item["kind"] == "Pod") == 200


def test_scan_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/scan.py", "--pods", "300", "--repeat", "1", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == {"pods", "diagnose_s", "parse_s", "ratio", "cpu_ratio", "live_s"}
    assert figures["pods"] == 300 and figures["diagnose_s"] > 0 and figures["live_s"] > 0
