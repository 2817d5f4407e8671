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
    assert set(figures) == {
        "pods",
        "diagnose_s",
        "parse_s",
        "ratio",
        "cpu_ratio",
        "live_s",
        "live_cli_s",
        "live_peak_rss_mib",
    }
    assert figures["pods"] == 300
    # The invariants of the figures, not their size: each ratio is its two times' quotient, the
    # CLI run includes a process start the in-process run does not, and a diagnosis holds memory.
    quotient = figures["diagnose_s"] / figures["parse_s"]  # of the rounded times: within rounding
    assert abs(figures["ratio"] - quotient) <= 0.05 * quotient + 0.01
    assert figures["live_cli_s"] > figures["live_s"] > 0
    assert 10 < figures["live_peak_rss_mib"] < 4096
