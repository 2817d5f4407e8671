"""The replay harness's plumbing, against the scripted server and a tiny case in HolmesGPT's format."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from benchmarks import replay

from tests.reasoning.scripted_llm import scripted_llm, text, tool_calls

CASES = Path(__file__).parent / "fixtures" / "holmes"
ANSWER = {
    "summary": "billing-api cannot connect to its database ledger-db:5432 (connection refused).",
    "root_cause": "CrashLoopBackOff",
    "evidence": [{"claim": "db refused", "quote": "dial tcp ledger-db:5432: connection refused"}],
}


def test_replay_json(tmp_path: Path) -> None:
    script = [
        tool_calls(("pod_logs", {"name": "billing-api", "container": "app", "namespace": "ledger"})),
        text(ANSWER),
    ]
    with scripted_llm(script) as llm:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = replay.main(
                ["--fixtures", str(CASES), "--base-url", llm.url, "--model", "scripted", "--json"]
            )
    assert code == 0
    report = json.loads(out.getvalue())
    assert report["total"] == 1 and report["passed"] == 1
    case = report["cases"][0]
    assert set(case) == {
        "case",
        "passed",
        "missing",
        "ending",
        "steps",
        "input_tokens",
        "output_tokens",
        "seconds",
    }
    assert case["ending"] == "answered" and case["steps"] == 2 and case["input_tokens"] == 200
    tool_result = next(m for m in llm.requests[1]["messages"] if m["role"] == "tool")["content"]
    assert "connection refused" in tool_result and "billing-api" not in tool_result  # pseudonymized
