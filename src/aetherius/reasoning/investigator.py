"""The investigation loop: a model calling the gateway's read tools, inside budgets that hold.

Every way a model or its endpoint can go wrong ends the investigation with an ``Answer`` whose
``ending`` says why, never with an exception: max steps, the token budgets (per investigation and
per cluster and day), the wall clock, a context that no longer fits, repeated calls, malformed or
truncated arguments, unknown tools, 429 past the retry budget, 5xx, timeouts. The last step
withholds the tools so that a model has to answer with what it has read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
import structlog

from aetherius.config import ReasoningSettings
from aetherius.diagnosis.model import REASONS
from aetherius.reasoning import metrics
from aetherius.reasoning.answer import Answer, Ending, parse_answer, verify
from aetherius.reasoning.budget import AnswerCache, TokenBudget
from aetherius.reasoning.client import ChatClient, ModelError
from aetherius.reasoning.privacy import Pseudonymizer
from aetherius.reasoning.tools import Toolbox, ToolError, tool_schemas

__all__ = ["Incident", "Investigation", "Investigator", "prompt"]

log = structlog.get_logger(__name__)
Progress = Callable[[dict[str, Any]], Awaitable[None]]
_MAX_CALL_ERRORS = 2  # a model gets one correction, then the investigation ends
_MAX_REPEATS = 2
_ENV = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def prompt(template: str, /, **values: Any) -> str:
    """A template from ``reasoning/prompts`` (package data), rendered."""
    text = resources.files("aetherius.reasoning").joinpath("prompts", f"{template}.md").read_text()
    return _ENV.from_string(text).render(**values)


@dataclass(frozen=True)
class Incident:
    """What an investigation starts from: the incident and the rules' answer for it."""

    id: str
    cluster: str
    namespace: str | None
    kind: str
    name: str
    rules_summary: str = "Unknown"
    findings: tuple[dict[str, Any], ...] = ()


@dataclass
class Investigation:
    """One investigation's outcome and its (pseudonymized) conversation, kept for follow-ups."""

    id: str
    answer: Answer
    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_outputs: list[str] = field(default_factory=list)
    cache_key: str = ""
    names: dict[str, str] = field(default_factory=dict)  # name → pseudonym, for a follow-up


def _normalize(text: str) -> str:
    """Evidence with what changes between two sightings of the same failure taken out."""
    text = re.sub(r"\b[0-9a-f]{8,10}-[0-9a-z]{5}\b", "<pod>", text)  # ReplicaSet pod names
    text = re.sub(r"\d+", "<n>", text)
    return " ".join(text.split())


class Investigator:
    """Runs investigations for one installation (one client, one key, shared cache and budget)."""

    def __init__(
        self,
        *,
        client: ChatClient,
        settings: ReasoningSettings,
        key: bytes,
        cache: AnswerCache,
        budget: TokenBudget,
        stream: bool = False,
    ) -> None:
        self.client = client
        self.settings = settings
        self._key = key
        self.cache = cache
        self.budget = budget
        self._stream = stream

    def cache_key(self, incident: Incident, question: str) -> str:
        """Model + normalized evidence: the same failure seen again costs no token."""
        doc = {
            "model": self.client.model,
            "kind": incident.kind,
            "namespace": incident.namespace,
            "name": _normalize(incident.name),
            "rules": _normalize(incident.rules_summary),
            "findings": sorted(
                _normalize(json.dumps(f, sort_keys=True, default=str)) for f in incident.findings
            ),
            "question": _normalize(question),
            "prompt": hashlib.sha256(prompt("system", reasons=", ".join(REASONS)).encode()).hexdigest(),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    async def investigate(
        self,
        incident: Incident,
        toolbox: Toolbox,
        *,
        question: str = "",
        history: Investigation | None = None,
        progress: Progress | None = None,
        investigation_id: str | None = None,
    ) -> Investigation:
        """Investigate (or answer a follow-up ``question`` on ``history``); never raises for the model."""
        ident = investigation_id or uuid.uuid4().hex
        key = self.cache_key(incident, question)
        if history is None:
            cached = await self.cache.get(key)
            if cached is not None:
                answer = Answer.model_validate_json(cached)
                answer.ending, answer.input_tokens, answer.output_tokens, answer.cost, answer.steps = (
                    "cached",
                    0,
                    0,
                    0.0,
                    0,
                )
                metrics.CACHE_HITS.inc()
                metrics.ENDINGS.labels("cached").inc()
                return Investigation(ident, answer, cache_key=key)
        pseudo = Pseudonymizer(self._key, enabled=self.settings.pseudonymize)
        pseudo.add("cluster", incident.cluster)
        for kind, value in (("namespace", incident.namespace), (incident.kind.lower(), incident.name)):
            if value:
                pseudo.add(kind if kind in ("namespace", "pod", "node") else "name", value)
        if history is not None:
            pseudo.restore(history.names)
        toolbox.learn = pseudo.learn
        toolbox.findings = [dict(f) for f in incident.findings]
        await toolbox.prime(incident.kind, incident.name)
        run = _Run(self, incident, toolbox, pseudo, progress, ident)
        investigation = await run.loop(question, history)
        investigation.cache_key = key
        if history is None and investigation.answer.ending == "answered":
            await self.cache.set(key, investigation.answer.model_dump_json())
        return investigation


class _Run:
    """The state of one investigation's loop."""

    def __init__(
        self,
        owner: Investigator,
        incident: Incident,
        toolbox: Toolbox,
        pseudo: Pseudonymizer,
        progress: Progress | None,
        ident: str,
    ) -> None:
        self.o = owner
        self.s = owner.settings
        self.incident = incident
        self.toolbox = toolbox
        self.pseudo = pseudo
        self.progress = progress
        self.ident = ident
        self.input_tokens = 0
        self.output_tokens = 0
        self.steps = 0
        self.tool_outputs: list[str] = []
        self.seen: set[str] = set()
        self.repeats = 0
        self.call_errors = 0
        self.deadline = time.monotonic() + self.s.wall_clock_seconds

    async def _emit(self, event: str, **data: Any) -> None:
        if self.progress is not None:
            await self.progress({"event": event, "investigation": self.ident, **data})

    def _messages(self, question: str, history: Investigation | None) -> list[dict[str, Any]]:
        if history is not None:
            self.tool_outputs = list(history.tool_outputs)
            return [*history.messages, {"role": "user", "content": self.pseudo.outbound(question)}]
        i = self.incident
        user = prompt(
            "incident",
            incident_id=i.id,
            cluster=i.cluster,
            namespace=i.namespace or "(cluster-scoped)",
            kind=i.kind,
            name=i.name,
            rules_summary=i.rules_summary,
            question=question,
        )
        return [
            {"role": "system", "content": prompt("system", reasons=", ".join(REASONS))},
            {"role": "user", "content": self.pseudo.outbound(user)},
        ]

    async def loop(self, question: str, history: Investigation | None) -> Investigation:
        messages = self._messages(question, history)
        ending: Ending = "max-steps"
        detail = ""
        answer: Answer | None = None
        tools = tool_schemas()
        while True:
            last = self.steps >= self.s.max_steps - 1
            stop = await self._budget_stop()
            if stop is not None:
                ending, detail = stop
                break
            if _estimate(messages) + _estimate(tools) + self.s.max_output_tokens // 4 > self.s.context_tokens:
                ending, detail = "context-overflow", "the conversation no longer fits the model's context"
                break
            if last:
                messages.append({"role": "user", "content": prompt("final")})
            remaining = self.deadline - time.monotonic()
            max_tokens = min(self.s.max_output_tokens - self.output_tokens, 4096)
            self.steps += 1
            await self._emit("step", step=self.steps)
            try:
                async with asyncio.timeout(remaining):
                    completion = await self.o.client.complete(
                        messages, tools=None if last else tools, max_tokens=max_tokens, stream=self.o._stream
                    )
            except TimeoutError:
                ending, detail = "wall-clock", f"{self.s.wall_clock_seconds:g}s"
                break
            except ModelError as exc:
                ending, detail = exc.reason, exc.detail  # type: ignore[assignment]
                break
            await self._account(completion.input_tokens, completion.output_tokens)
            if completion.finish_reason == "length" and not completion.tool_calls:
                ending, detail = "token-budget", "the model's answer was cut at max_tokens"
                break
            if not completion.tool_calls:
                answer = parse_answer(completion.content)
                ending = "answered" if answer is not None else "malformed-answer"
                if answer is None:
                    detail = "the final message is not the JSON answer"
                messages.append({"role": "assistant", "content": completion.content})
                break
            if last:
                ending, detail = "max-steps", f"still calling tools after {self.steps} steps"
                break
            messages.append(
                {
                    "role": "assistant",
                    "content": completion.content or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in completion.tool_calls
                    ],
                }
            )
            stop_call = await self._calls(completion.tool_calls, messages)
            if stop_call is not None:
                ending, detail = stop_call
                break
        result = self._finish(answer, ending, detail)
        metrics.ENDINGS.labels(result.ending).inc()
        await self._emit("done", ending=result.ending)
        log.info(
            "reasoning.investigation",
            investigation=self.ident,
            incident=self.incident.id,
            ending=result.ending,
            steps=self.steps,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
        )
        return Investigation(self.ident, result, messages, self.tool_outputs, names=self.pseudo.names())

    async def _budget_stop(self) -> tuple[Ending, str] | None:
        if self.input_tokens >= self.s.max_input_tokens or self.output_tokens >= self.s.max_output_tokens:
            return "token-budget", f"{self.input_tokens} in, {self.output_tokens} out"
        if await self.o.budget.remaining(self.incident.cluster) <= 0:
            return (
                "daily-budget",
                f"cluster {self.incident.cluster} spent its {self.o.budget.limit} tokens today",
            )
        if time.monotonic() >= self.deadline:
            return "wall-clock", f"{self.s.wall_clock_seconds:g}s"
        return None

    async def _account(self, tokens_in: int, tokens_out: int) -> None:
        self.input_tokens += tokens_in
        self.output_tokens += tokens_out
        await self.o.budget.spend(self.incident.cluster, tokens_in + tokens_out)
        cluster = self.incident.cluster
        metrics.TOKENS.labels(cluster, "in").inc(tokens_in)
        metrics.TOKENS.labels(cluster, "out").inc(tokens_out)
        metrics.STEPS.labels(cluster).inc()
        metrics.COST.labels(cluster).inc(self._cost(tokens_in, tokens_out))

    def _cost(self, tokens_in: int, tokens_out: int) -> float:
        return tokens_in * self.s.price_per_input_token + tokens_out * self.s.price_per_output_token

    async def _calls(self, calls: Any, messages: list[dict[str, Any]]) -> tuple[Ending, str] | None:
        for call in calls:
            arguments = self.pseudo.inbound(call.arguments)  # the model names things by their tokens
            signature = f"{call.name}:{_canonical(arguments)}"
            try:
                args = self.toolbox.parse(call.name, arguments)
            except ToolError as exc:
                self.call_errors += 1
                kind: Ending = (
                    "unknown-tool" if str(exc).startswith("unknown tool") else "malformed-arguments"
                )
                if self.call_errors >= _MAX_CALL_ERRORS:
                    return kind, str(exc)
                text = f"error: {exc}"
            else:
                if signature in self.seen:
                    self.repeats += 1
                    if self.repeats >= _MAX_REPEATS:
                        return "runaway", f"{call.name} called again with the same arguments"
                    text = "error: you already made this call; its result is above. Answer or read something else."
                else:
                    self.seen.add(signature)
                    await self._emit("tool", tool=call.name)
                    try:
                        text = await self.toolbox.run(args)
                    except ToolError as exc:
                        text = f"error: {exc}"
            sent = self.pseudo.outbound(text)
            self.tool_outputs.append(sent)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": sent})
        return None

    def _finish(self, answer: Answer | None, ending: Ending, detail: str) -> Answer:
        if answer is None:
            answer = Answer(
                summary=(
                    f"The investigation ended before an answer ({ending}{': ' + detail if detail else ''}). "
                    f"The rules' answer stands: {self.incident.rules_summary}"
                ),
            )
        back = self.pseudo.inbound
        answer.summary = back(answer.summary)
        for item in answer.evidence:
            item.claim, item.quote = back(item.claim), back(item.quote)
        # Checked with names mapped back on both sides: a quote is the same evidence whether the
        # model wrote a name's token or (from the question) the name itself.
        verify(answer, [back(t) for t in self.tool_outputs])
        answer.next_steps = [back(x) for x in answer.next_steps]
        answer.kubectl = [back(x) for x in answer.kubectl]
        answer.ending, answer.ending_detail = ending, detail
        answer.model = self.o.client.model
        answer.steps = self.steps
        answer.input_tokens, answer.output_tokens = self.input_tokens, self.output_tokens
        answer.cost = self._cost(self.input_tokens, self.output_tokens)
        return answer


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments or "{}"), sort_keys=True)
    except ValueError:
        return arguments


def _estimate(messages: list[dict[str, Any]]) -> int:  # messages or tool schemas
    """Tokens, roughly (4 characters each): enough to stop before the endpoint refuses."""
    return len(json.dumps(messages, default=str)) // 4
