"""The fleet benchmark at smoke size: it runs end to end and every figure has its shape (no timing)."""

from __future__ import annotations

import math

from benchmarks.cgroups import cpu_limits_work
from benchmarks.fleet import run

KEYS = {
    "clusters",
    "p50_ms",
    "p99_ms",
    "signals_per_s_1",
    "signals_per_s_3",
    "scale_ratio",
    "agent_peak_rss_mib",
}


async def test_fleet_benchmark_smoke() -> None:
    why_not = cpu_limits_work()
    result = await run(smoke=True)
    assert set(result) == KEYS
    assert result["clusters"] == 2
    p50, p99 = result["p50_ms"], result["p99_ms"]
    assert isinstance(p50, float) and isinstance(p99, float)
    assert not math.isnan(p50) and 0 < p50 <= p99, "every failure reached a report, after it happened"
    rss = result["agent_peak_rss_mib"]
    assert isinstance(rss, float) and rss > 20, "the agent's own high-water mark was read"
    if not why_not:
        one, three, ratio = result["signals_per_s_1"], result["signals_per_s_3"], result["scale_ratio"]
        assert isinstance(one, float) and isinstance(three, float) and isinstance(ratio, float)
        assert one > 0 and three > 0 and ratio == round(three / one, 2)
    else:
        assert result["scale_ratio"] is None and result["signals_per_s_1"] is None, why_not
