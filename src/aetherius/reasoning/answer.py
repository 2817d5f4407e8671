"""The investigator's structured answer, and the check that its evidence was really read."""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from aetherius.diagnosis.model import REASONS

__all__ = ["Answer", "Evidence", "parse_answer", "verify"]

Ending = Literal[
    "answered",
    "max-steps",
    "runaway",
    "token-budget",
    "daily-budget",
    "wall-clock",
    "context-overflow",
    "malformed-arguments",
    "unknown-tool",
    "malformed-answer",
    "rate-limited",
    "server-error",
    "timeout",
    "unreachable",
    "refused",
    "malformed-response",
    "cached",
    "failed",  # an error of Aetherius' own (the store, the gateway): said, never raised to a person
]


class Evidence(BaseModel):
    claim: str = ""
    quote: str = ""
    verified: bool = False  # set here, never by the model: the quote was found in a tool result


class Answer(BaseModel):
    summary: str = ""
    root_cause: str = "Unknown"
    evidence: list[Evidence] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    kubectl: list[str] = Field(default_factory=list)
    ending: Ending = "answered"
    ending_detail: str = ""
    model: str = ""
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


_JSON = re.compile(r"\{.*\}", re.DOTALL)


def parse_answer(text: str) -> Answer | None:
    """The model's final JSON (fenced or bare); None when there is none to read."""
    match = _JSON.search(text or "")
    if not match:
        return None
    try:
        raw = json.loads(match.group(0))
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    raw.pop("verified", None)
    evidence = raw.get("evidence")
    if isinstance(evidence, list):
        raw["evidence"] = [
            {"claim": str(e.get("claim", "")), "quote": str(e.get("quote", ""))}
            if isinstance(e, dict)
            else {"claim": str(e), "quote": ""}
            for e in evidence
        ]
    for key in ("next_steps", "kubectl"):
        if isinstance(raw.get(key), list):
            raw[key] = [str(x) for x in raw[key]]
    try:
        answer = Answer.model_validate(
            {k: raw[k] for k in ("summary", "root_cause", "evidence", "next_steps", "kubectl") if k in raw}
        )
    except ValidationError:
        return None
    if answer.root_cause not in REASONS:
        answer.root_cause = "Unknown"
    return answer


def _norm(text: str) -> str:
    return " ".join(text.split())


def verify(answer: Answer, tool_outputs: list[str]) -> None:
    """Mark each quote verified only if it appears, whitespace aside, in what the tools returned.

    NB: the caller maps names back on both sides first (the investigator does), so a quote
    matches whether the model wrote a name's pseudonym or the name itself.
    Tool results are JSON text, so a quote is also looked for in its JSON-escaped form.
    """
    haystack = [_norm(t) for t in tool_outputs]
    for item in answer.evidence:
        quote = _norm(item.quote)
        if len(quote) < 4:
            item.verified = False
            continue
        escaped = _norm(json.dumps(item.quote)[1:-1])
        item.verified = any(quote in h or escaped in h for h in haystack)
