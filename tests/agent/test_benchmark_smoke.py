"""The node agent benchmark runs at smoke size and reports the promised JSON (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_node_agent_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/node_agent.py", "--seconds", "1", "--pods", "10", "--json"],
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
        "polls",
        "cpu_ms_per_poll",
        "idle_cpu_percent",
        "cpu_s_per_hour",
        "core_percent",
        "peak_rss_mib",
    }
    assert figures["pods"] == 10 and figures["polls"] > 0
    # The invariants: an hour of CPU as a share of a core, and an agent that holds some memory.
    assert (
        abs(figures["core_percent"] - figures["cpu_s_per_hour"] / 36) <= 0.01 + 0.01 * figures["core_percent"]
    )
    assert figures["cpu_ms_per_poll"] >= 0 and 10 < figures["peak_rss_mib"] < 1024
