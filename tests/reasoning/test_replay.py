"""The replay harness's plumbing, against the scripted server and a tiny case in HolmesGPT's format."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from benchmarks import replay

from tests.reasoning.scripted_llm import ScriptedLLM, scripted_llm, text, tool_calls

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
        "scored_by",
        "judgements",
        "judge_note",
        "judge_tokens",
        "ending",
        "steps",
        "input_tokens",
        "output_tokens",
        "seconds",
    }
    assert case["ending"] == "answered" and case["steps"] == 2 and case["input_tokens"] == 200
    assert case["scored_by"] == "keyword" and report["judge"] is None and case["judge_tokens"] == 0
    tool_result = next(m for m in llm.requests[1]["messages"] if m["role"] == "tool")["content"]
    assert "connection refused" in tool_result and "billing-api" not in tool_result  # pseudonymized


def _run_with_judge(judge_reply: str | dict[str, Any]) -> tuple[dict[str, Any], ScriptedLLM]:
    script = [
        tool_calls(("pod_logs", {"name": "billing-api", "container": "app", "namespace": "ledger"})),
        text(ANSWER),
    ]
    with scripted_llm(script) as llm, scripted_llm([text(judge_reply)]) as judge:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = replay.main(
                [
                    *("--fixtures", str(CASES), "--base-url", llm.url, "--model", "scripted", "--json"),
                    *("--judge-model", "judge-1", "--judge-base-url", judge.url),
                ]
            )
    assert code == 0
    return json.loads(out.getvalue()), judge


def test_the_judge_scores_each_expected_element() -> None:
    """The judge says the element is absent: the case fails although keyword match would pass it."""
    reply = {
        "elements": [{"index": 0, "present": False, "reason": "the port is not named as the database's"}]
    }
    report, judge = _run_with_judge(reply)
    case = report["cases"][0]
    assert report["judge"] == "judge-1" and case["scored_by"] == "judge" and case["passed"] is False
    assert case["judge_tokens"] == 150  # the scripted reply's usage: 100 in, 50 out
    assert case["judgements"] == [
        {
            "element": "billing-api cannot connect to its database at ledger-db:5432",
            "present": False,
            "reason": "the port is not named as the database's",
        }
    ]
    assert case["missing"] == ["billing-api cannot connect to its database at ledger-db:5432"]
    [request] = judge.requests
    assert request["model"] == "judge-1" and request["temperature"] == 0
    assert request["response_format"] == {"type": "json_object"} and "tools" not in request
    prompt = request["messages"][0]["content"]
    assert "0. billing-api cannot connect to its database at ledger-db:5432" in prompt
    assert "ledger-db:5432 (connection refused)" in prompt  # the answer as a person reads it


def test_a_malformed_judge_reply_falls_back_to_keyword_match_and_says_so() -> None:
    report, _judge = _run_with_judge("Yes, it is present.")
    case = report["cases"][0]
    assert case["scored_by"] == "keyword (judge fallback)" and case["passed"] is True
    assert case["judgements"] == [] and case["judge_note"].startswith("judge reply malformed")


def test_a_judge_reply_with_the_wrong_number_of_verdicts_is_malformed() -> None:
    reply = {
        "elements": [
            {"index": 0, "present": True, "reason": "yes"},
            {"index": 1, "present": True, "reason": "x"},
        ]
    }
    case = _run_with_judge(reply)[0]["cases"][0]
    assert case["scored_by"] == "keyword (judge fallback)"
    assert case["judge_note"] == "judge reply malformed: 2 verdicts for 1 elements"
