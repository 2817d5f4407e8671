"""The pipeline benchmark at smoke size: it runs end to end and reports every figure (no timing)."""

from __future__ import annotations

import pytest
from benchmarks.pipeline import run


async def test_pipeline_benchmark_smoke() -> None:
    result = await run(smoke=True)
    assert set(result) == {"p50_ms", "p99_ms", "signals_per_s_1", "signals_per_s_3", "scale_ratio"}
    assert result["p50_ms"] > 0 and result["p99_ms"] >= result["p50_ms"]
    assert result["signals_per_s_1"] > 0 and result["signals_per_s_3"] > 0
    # the ratio is of the two rates (each rounded to 0.1 in the output, the ratio from the unrounded)
    expected = result["signals_per_s_3"] / result["signals_per_s_1"]
    assert result["scale_ratio"] == pytest.approx(expected, rel=0.01, abs=0.01)
