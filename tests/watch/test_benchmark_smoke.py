"""The ingest benchmark runs end to end at a small size; every event arrives. No timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "decode_events_per_s",
    "baseline_events_per_s",
    "decode_ratio",
    "e2e_events_per_s",
    "ceiling_events_per_s",
    "ceiling_ratio",
    "transport_events_per_s",
    "transport_ratio",
    "peak_rss_mib",
}


def test_ingest_benchmark_smoke(nats_url: str) -> None:
    n = 2000
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "ingest.py"),
            "--events",
            str(n),
            "--nats",
            nats_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(doc) >= KEYS
    assert all(isinstance(doc[key], int | float) and doc[key] > 0 for key in KEYS)
    # every event went through each consumer, and every Signal reached JetStream
    assert doc["decode_events"] == doc["baseline_events"] == n
    assert doc["decode_signals"] == n
    assert doc["e2e_published"] == doc["ceiling_published"] == doc["transport_published"] == n
