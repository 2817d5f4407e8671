"""An LLM judge for the replay: is each expected element present in an answer?

Why a judge at all: keyword match (``replay.score``) fails a correct answer worded differently and
passes a wrong one that names the right things; a model asked element by element is closer to how
a person grades. Why keyword match stays the default and the fallback: a judge is one more model
with its own mistakes, so it runs only when configured, at temperature 0 with JSON output, and a
reply that is not the JSON asked for (one yes/no with a reason per element, validated here) is not
guessed at: that case is scored by keywords and the report says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aetherius.reasoning.client import ChatClient, ModelError

__all__ = ["Judge", "Verdict"]

_PROMPT = Path(__file__).parent / "prompts" / "judge.md"
_ENV = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


class _Element(BaseModel):
    model_config = ConfigDict(extra="ignore")

    index: int = Field(ge=0)
    present: bool
    reason: str = Field(min_length=1, max_length=500)


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    elements: list[_Element]


@dataclass
class Verdict:
    """The judge's scoring of one answer, or why there is none (``error``: keyword match applies)."""

    passed: bool = False
    missing: list[str] = field(default_factory=list)
    judgements: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


class Judge:
    """One judge endpoint and model (``--judge-base-url``, ``--judge-model``)."""

    def __init__(self, client: ChatClient, *, max_tokens: int = 1024) -> None:
        self.client = client
        self.max_tokens = max_tokens

    async def aclose(self) -> None:
        await self.client.aclose()

    async def score(self, expected: Sequence[str], answer_text: str) -> Verdict:
        """Ask once per answer for a verdict on every element; never raises for the judge."""
        text = _ENV.from_string(_PROMPT.read_text()).render(
            expected=list(expected), count=len(expected), answer=answer_text
        )
        try:
            completion = await self.client.complete(
                [{"role": "user", "content": text}], tools=None, max_tokens=self.max_tokens, json_object=True
            )
        except ModelError as exc:
            return Verdict(error=f"judge call failed: {exc.reason} {exc.detail}".strip())
        verdict = Verdict(input_tokens=completion.input_tokens, output_tokens=completion.output_tokens)
        try:
            reply = _Reply.model_validate_json(_unfenced(completion.content or ""))
        except ValidationError as exc:
            verdict.error = f"judge reply malformed: {exc.errors()[0]['msg']}"
            return verdict
        if sorted(e.index for e in reply.elements) != list(range(len(expected))):
            verdict.error = (
                f"judge reply malformed: {len(reply.elements)} verdicts for {len(expected)} elements"
            )
            return verdict
        for element in sorted(reply.elements, key=lambda e: e.index):
            name = expected[element.index]
            verdict.judgements.append({"element": name, "present": element.present, "reason": element.reason})
            if not element.present:
                verdict.missing.append(name)
        verdict.passed = not verdict.missing
        return verdict


def _unfenced(content: str) -> str:
    """The JSON inside a ```json fence, when a model adds one despite JSON mode."""
    body = content.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return body.strip()
