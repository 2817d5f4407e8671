"""Replay HolmesGPT's public evaluation cases (Apache-2.0) through the Aetherius investigator.

Point it at a checkout of that repository (or any directory of cases in its format): each case
directory holds ``test_case.yaml`` (``user_prompt``, ``expected_output``) and recorded tool
outputs (``*.txt``: a first line of JSON naming ``tool_name`` and ``match_params``, then the
output). The recorded outputs become the gateway's replies (through the same redaction, audit and
pseudonyms as a live cluster), the investigator runs against the configured endpoint, and the
answer is scored by keyword match of each expected element, or, with ``--judge-model``, by a
judge model asked whether each element is present (``benchmarks/judge.py``; a malformed judge reply
falls back to keyword match for that case, and ``scored_by`` says so). Per case: pass/fail, how it
was scored, tokens, seconds.

    python benchmarks/replay.py --fixtures PATH --base-url URL --model M [--api-key-env VAR] [--json]
        [--judge-model J [--judge-base-url URL] [--judge-api-key-env VAR]]

``PATH`` may be the checkout (cases under tests/llm/fixtures/test_ask_holmes) or a cases directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from aetherius.config import ReasoningSettings
from aetherius.gateway import ExecutionGateway, MemoryAuditSink
from aetherius.gateway.decode import AnalysisItem
from aetherius.logs import configure_logging
from aetherius.reasoning.budget import DailyBudget, MemoryCache
from aetherius.reasoning.client import ChatClient
from aetherius.reasoning.investigator import Incident, Investigator
from aetherius.reasoning.tools import Toolbox
from benchmarks.judge import Judge

_STOP = {
    "the",
    "a",
    "an",
    "is",
    "are",
    "and",
    "or",
    "of",
    "to",
    "in",
    "on",
    "its",
    "it",
    "be",
    "must",
    "should",
    "that",
    "with",
    "at",
    "for",
}
_KINDS = {
    "pod": "Pod",
    "deployment": "Deployment",
    "node": "Node",
    "service": "Service",
    "statefulset": "StatefulSet",
}


class Recorded:
    """One recorded tool output and what it answers."""

    def __init__(self, tool: str, params: dict[str, Any], text: str) -> None:
        self.tool, self.params, self.text = tool, params, text


def load_case(directory: Path) -> tuple[dict[str, Any], list[Recorded]]:
    case = yaml.safe_load((directory / "test_case.yaml").read_text()) or {}
    recorded = []
    for path in sorted(directory.glob("*.txt")):
        head, _, body = path.read_text(errors="replace").partition("\n")
        try:
            meta = json.loads(head)
        except ValueError:
            continue
        if isinstance(meta, dict) and meta.get("tool_name"):
            recorded.append(Recorded(str(meta["tool_name"]), dict(meta.get("match_params") or {}), body))
    return case, recorded


class ReplayBackend:
    """The gateway backend over recorded outputs: a describe is an object, logs are logs."""

    source = "snapshot"
    cluster = "replay"
    secret_metadata = False

    def __init__(self, recorded: list[Recorded]) -> None:
        self.recorded = recorded
        self.warnings: list[str] = []

    def _find(self, words: Sequence[str], **match: str | None) -> list[Recorded]:
        out = []
        for r in self.recorded:
            if not any(w in r.tool for w in words):
                continue
            if all(v is None or str(r.params.get(k, v)).lower() == str(v).lower() for k, v in match.items()):
                out.append(r)
        return out

    def _object(self, kind: str, r: Recorded) -> dict[str, Any]:
        meta = {"name": r.params.get("name", ""), "namespace": r.params.get("namespace", "")}
        return {"kind": kind, "metadata": meta, "recorded": {"tool": r.tool, "output": r.text}}

    async def list(
        self,
        kind: str,
        *,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        analysis: bool = False,
    ) -> tuple[Sequence[AnalysisItem], int]:
        if kind == "Event":
            name = re.search(r"involvedObject\.name=([^,]+)", field_selector or "")
            found = self._find(["event"], name=name.group(1) if name else None)
            items: list[Any] = [
                {"kind": "Event", "message": r.text, "metadata": {"name": "recorded"}} for r in found
            ]
        else:
            found = self._find(["get", "list", "find"], namespace=namespace)
            items = [self._object(kind, r) for r in found]
        return items, sum(len(r.text) for r in found)

    async def get(self, kind: str, *, namespace: str | None, name: str) -> tuple[dict[str, Any] | None, int]:
        found = self._find(["describe", "get", "yaml"], name=name)
        return (self._object(kind, found[0]), len(found[0].text)) if found else (None, 0)

    async def logs(
        self, *, namespace: str, name: str, container: str, previous: bool, tail_lines: int, max_bytes: int
    ) -> str | None:
        found = self._find(["previous_logs"] if previous else ["logs"], name=name)
        return "\n".join(found[0].text.splitlines()[-tail_lines:])[-max_bytes:] if found else None


def _subject(prompt: str) -> tuple[str, str, str | None]:
    """The object a prompt is about (best effort: 'pod X in namespace Y')."""
    kind = next((k for k in _KINDS if re.search(rf"\b{k}\b", prompt, re.I)), "pod")
    name = re.search(rf"\b{kind}\s+[`'\"]?([a-z0-9][a-z0-9.-]*)", prompt, re.I)
    ns = re.search(r"namespace\s+[`'\"]?([a-z0-9][a-z0-9-]*)", prompt, re.I)
    return _KINDS[kind], name.group(1) if name else "unknown", ns.group(1) if ns else None


def score(expected: Sequence[str], answer_text: str) -> tuple[bool, list[str]]:
    """Keyword match: every significant word of each expected element appears in the answer."""
    text = answer_text.lower()
    missing = []
    for element in expected:
        words = [w for w in re.findall(r"[a-z0-9][a-z0-9._:/-]*[a-z0-9]", element.lower()) if w not in _STOP]
        if not words or sum(w in text for w in words) / len(words) < 0.6:
            missing.append(element)
    return not missing, missing


async def run_case(
    directory: Path, settings: ReasoningSettings, api_key: str, *, judge: Judge | None = None
) -> dict[str, Any]:
    case, recorded = load_case(directory)
    prompts = case.get("user_prompt") or ""
    prompt = prompts[0] if isinstance(prompts, list) else str(prompts)
    expected = case.get("expected_output") or []
    expected = [expected] if isinstance(expected, str) else [str(e) for e in expected]
    kind, name, namespace = _subject(prompt)
    gateway = ExecutionGateway(ReplayBackend(recorded), audit=MemoryAuditSink())  # type: ignore[arg-type]
    client = ChatClient(
        base_url=settings.base_url,
        model=settings.model,
        api_key=api_key,
        retry_budget=settings.retry_budget_seconds,
    )
    investigator = Investigator(
        client=client, settings=settings, key=b"replay", cache=MemoryCache(), budget=DailyBudget(10**12)
    )
    toolbox = Toolbox(gateway=gateway, requester=f"replay:{directory.name}", namespace=namespace, widen=True)
    started = time.perf_counter()
    try:
        result = await investigator.investigate(
            Incident(id=directory.name, cluster="replay", namespace=namespace, kind=kind, name=name),
            toolbox,
            question=prompt,
        )
    finally:
        await client.aclose()
    answer = result.answer
    text = " ".join(
        [
            answer.summary,
            answer.root_cause,
            *(e.claim + " " + e.quote for e in answer.evidence),
            *answer.next_steps,
        ]
    )
    passed, missing = score(expected, text)
    scored_by, judgements, note, judge_tokens = "keyword", [], None, 0
    if judge is not None:
        verdict = await judge.score(expected, text)
        judge_tokens = verdict.input_tokens + verdict.output_tokens
        if verdict.error is None:
            passed, missing, judgements, scored_by = (
                verdict.passed,
                verdict.missing,
                verdict.judgements,
                "judge",
            )
        else:
            scored_by, note = "keyword (judge fallback)", verdict.error
    return {
        "case": directory.name,
        "passed": passed,
        "missing": missing,
        "scored_by": scored_by,
        "judgements": judgements,
        "judge_note": note,
        "judge_tokens": judge_tokens,
        "ending": answer.ending,
        "steps": answer.steps,
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
        "seconds": round(time.perf_counter() - started, 3),
    }


def cases(root: Path) -> list[Path]:
    base = root / "tests" / "llm" / "fixtures" / "test_ask_holmes"
    base = base if base.is_dir() else root
    return sorted(p.parent for p in base.glob("*/test_case.yaml"))


async def replay(
    root: Path, settings: ReasoningSettings, api_key: str, only: str | None, *, judge: Judge | None = None
) -> dict[str, Any]:
    try:
        results = [
            await run_case(d, settings, api_key, judge=judge)
            for d in cases(root)
            if not only or only in d.name
        ]
    finally:
        if judge is not None:
            await judge.aclose()
    passed = sum(r["passed"] for r in results)
    return {
        "model": settings.model,
        "judge": judge.client.model if judge is not None else None,
        "cases": results,
        "total": len(results),
        "passed": passed,
        "input_tokens": sum(r["input_tokens"] for r in results),
        "output_tokens": sum(r["output_tokens"] for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fixtures", type=Path, required=True)
    parser.add_argument("--base-url", default=os.environ.get("AETHERIUS_REASONING_BASE_URL", ""))
    parser.add_argument("--model", default=os.environ.get("AETHERIUS_REASONING_MODEL", ""))
    parser.add_argument("--api-key-env", default="AETHERIUS_REASONING_API_KEY")
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--case", default=None, help="only cases whose directory name contains this")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--judge-model", default="", help="score by this judge model (default: keyword match)"
    )
    parser.add_argument("--judge-base-url", default="", help="the judge's endpoint (default: --base-url)")
    parser.add_argument("--judge-api-key-env", default="", help="default: --api-key-env")
    args = parser.parse_args(argv)
    if not args.base_url or not args.model:
        parser.error("--base-url and --model are required (or AETHERIUS_REASONING_BASE_URL/_MODEL)")
    configure_logging(level="warning")  # logs to stderr: stdout is the report
    settings = ReasoningSettings(
        enabled=True, base_url=args.base_url, model=args.model, max_steps=args.max_steps
    )
    judge = None
    if args.judge_model:
        judge = Judge(
            ChatClient(
                base_url=args.judge_base_url or args.base_url,
                model=args.judge_model,
                api_key=os.environ.get(args.judge_api_key_env or args.api_key_env, ""),
                retry_budget=settings.retry_budget_seconds,
            )
        )
    report = asyncio.run(
        replay(args.fixtures, settings, os.environ.get(args.api_key_env, ""), args.case, judge=judge)
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in report["cases"]:
            mark = "PASS" if r["passed"] else "FAIL"
            print(
                f"{mark} {r['case']}: {r['ending']}, {r['steps']} steps, {r['input_tokens']}+{r['output_tokens']} tokens, {r['seconds']}s, scored by {r['scored_by']}"
            )
            if r["judge_note"]:
                print(f"  {r['judge_note']}")
        print(f"{report['passed']}/{report['total']} passed")
    return 0 if report["total"] else 1


if __name__ == "__main__":
    sys.exit(main())
