"""An OpenAI-compatible chat completions client with the failures an investigation must survive.

Why not an SDK: one POST, any compatible server (OpenAI, Azure, vLLM, Ollama, llama.cpp, LocalAI),
and every failure mapped to a ``ModelError`` with a reason the investigator can report instead of
raising through the loop.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

__all__ = ["ChatClient", "Completion", "ModelError", "ToolCall"]

log = structlog.get_logger(__name__)


class ModelError(Exception):
    """The endpoint could not answer; ``reason`` is one of the investigation's ending reasons."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model sent it: validated by the tools, not here


@dataclass
class Completion:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


class ChatClient:
    """POST /chat/completions, streamed or not; 429 with Retry-After honoured within a budget."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        retry_budget: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._retry_budget = retry_budget
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None,
        max_tokens: int,
        stream: bool = False,
        json_object: bool = False,
    ) -> Completion:
        """One completion; ``json_object`` asks for JSON mode (``response_format``), for callers
        that parse the reply and not only read it."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if json_object:
            body["response_format"] = {"type": "json_object"}
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        waited = 0.0
        while True:
            try:
                if stream:
                    return await self._stream(body)
                response = await self._http.post("chat/completions", json=body)
            except httpx.TimeoutException as exc:
                raise ModelError("timeout", type(exc).__name__) from None
            except httpx.HTTPError as exc:
                raise ModelError("unreachable", type(exc).__name__) from None
            except _Retry as retry:
                delay = retry.delay
            else:
                if response.status_code == 429:
                    delay = _retry_after(response.headers.get("retry-after"))
                else:
                    _check(response.status_code, response.text)
                    return _parse(response.json())
            if waited + delay > self._retry_budget:
                raise ModelError("rate-limited", f"Retry-After {delay:g}s past the budget")
            log.info("reasoning.rate_limited", retry_after=delay)
            waited += delay
            await asyncio.sleep(delay)

    async def _stream(self, body: dict[str, Any]) -> Completion:
        out = Completion()
        calls: dict[int, dict[str, str]] = {}
        async with self._http.stream("POST", "chat/completions", json=body) as response:
            if response.status_code == 429:
                raise _Retry(_retry_after(response.headers.get("retry-after")))
            if response.status_code >= 400:
                _check(response.status_code, (await response.aread()).decode(errors="replace"))
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise ModelError("malformed-response", "a stream chunk is not JSON") from None
                _usage(out, chunk)
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    out.content += delta.get("content") or ""
                    for tc in delta.get("tool_calls") or []:
                        slot = calls.setdefault(
                            int(tc.get("index", 0)), {"id": "", "name": "", "arguments": ""}
                        )
                        slot["id"] = tc.get("id") or slot["id"]
                        fn = tc.get("function") or {}
                        slot["name"] += fn.get("name") or ""
                        slot["arguments"] += fn.get("arguments") or ""
                    out.finish_reason = choice.get("finish_reason") or out.finish_reason
        out.tool_calls = [
            ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"]) for i, c in sorted(calls.items())
        ]
        return out


class _Retry(Exception):
    def __init__(self, delay: float) -> None:
        self.delay = delay


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0


def _check(status: int, text: str) -> None:
    if status < 400:
        return
    lowered = text.lower()
    if status == 400 and ("context" in lowered and ("length" in lowered or "window" in lowered)):
        raise ModelError("context-overflow", f"HTTP {status}")
    if status >= 500:
        raise ModelError("server-error", f"HTTP {status}")
    raise ModelError("refused", f"HTTP {status}")


def _usage(out: Completion, doc: dict[str, Any]) -> None:
    usage = doc.get("usage") or {}
    out.input_tokens += int(usage.get("prompt_tokens") or 0)
    out.output_tokens += int(usage.get("completion_tokens") or 0)


def _parse(doc: Any) -> Completion:
    if not isinstance(doc, dict) or not doc.get("choices"):
        raise ModelError("malformed-response", "no choices")
    out = Completion()
    _usage(out, doc)
    choice = doc["choices"][0]
    message = choice.get("message") or {}
    out.content = message.get("content") or ""
    out.finish_reason = choice.get("finish_reason") or ""
    for i, tc in enumerate(message.get("tool_calls") or []):
        fn = tc.get("function") or {}
        out.tool_calls.append(
            ToolCall(tc.get("id") or f"call_{i}", fn.get("name") or "", fn.get("arguments") or "")
        )
    return out
