"""A scripted OpenAI-compatible chat completions server on loopback, for the reasoning tests.

A real HTTP server (stdlib, its own thread): each POST /v1/chat/completions takes the next reply of
the test's script and records the request body it received, so a test can assert on exactly what
left the process. Replies: ``tool_calls(...)``, ``text(...)``, ``status(...)``, ``gated(...)`` or ``hang()`` (held
until the server closes: a timeout without a sleep). A request with ``stream: true`` gets the reply
as server-sent events, tool call arguments split across chunks as real servers do.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ScriptedLLM", "gated", "hang", "scripted_llm", "status", "text", "tool_calls"]


def tool_calls(
    *calls: tuple[str, Any], prompt_tokens: int = 100, completion_tokens: int = 20
) -> dict[str, Any]:
    """A reply calling tools; arguments given as str are sent as they are (malformed on purpose)."""
    return {
        "kind": "message",
        "message": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
                for i, (name, args) in enumerate(calls)
            ],
        },
        "finish_reason": "tool_calls",
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


def text(
    content: str | dict[str, Any], *, prompt_tokens: int = 100, completion_tokens: int = 50
) -> dict[str, Any]:
    body = content if isinstance(content, str) else json.dumps(content)
    return {
        "kind": "message",
        "message": {"role": "assistant", "content": body},
        "finish_reason": "stop",
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


def status(code: int, body: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "kind": "status",
        "code": code,
        "body": body or json.dumps({"error": {"message": "scripted"}}),
        "headers": headers or {},
    }


def hang() -> dict[str, Any]:
    return {"kind": "hang"}


def gated(reply: dict[str, Any], gate: threading.Event) -> dict[str, Any]:
    """``reply``, sent once the test sets ``gate``: a moment to look at an investigation running."""
    return {**reply, "gate": gate}


class ScriptedLLM:
    """The server's state: the script still to play and every request body received."""

    def __init__(self, script: list[dict[str, Any]]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self.url = ""

    def next(self, body: bytes) -> dict[str, Any]:
        with self._lock:
            self.raw.append(body)
            self.requests.append(json.loads(body))
            if not self.script:
                return status(500, "script exhausted")
            return self.script.pop(0)

    def received(self) -> str:
        """Everything that reached the server, as one text."""
        return b"\n".join(self.raw).decode()


def _handler(state: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, b"{}")
                return
            reply = state.next(body)
            gate = reply.get("gate")
            if gate is not None:
                while not gate.wait(0.05) and not state.closing.is_set():
                    pass
            if reply["kind"] == "hang":
                state.closing.wait()
                return
            if reply["kind"] == "status":
                self._send(reply["code"], reply["body"].encode(), reply["headers"])
                return
            request = json.loads(body)
            if request.get("stream"):
                self._stream(reply)
                return
            doc = {
                "id": "chatcmpl-scripted",
                "object": "chat.completion",
                "model": request.get("model"),
                "choices": [
                    {"index": 0, "message": reply["message"], "finish_reason": reply["finish_reason"]}
                ],
                "usage": reply["usage"],
            }
            self._send(200, json.dumps(doc).encode())

        def _send(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, reply: dict[str, Any]) -> None:
            message = reply["message"]
            chunks: list[dict[str, Any]] = []
            if message.get("content"):
                content = message["content"]
                half = len(content) // 2
                chunks += [{"content": content[:half]}, {"content": content[half:]}]
            for i, call in enumerate(message.get("tool_calls") or []):
                args = call["function"]["arguments"]
                half = len(args) // 2
                chunks.append(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": args[:half]},
                            }
                        ]
                    }
                )
                chunks.append({"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]})
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            for delta in chunks:
                doc = {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(doc)}\n\n".encode())
            final = {
                "choices": [{"index": 0, "delta": {}, "finish_reason": reply["finish_reason"]}],
                "usage": reply["usage"],
            }
            self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
            self.close_connection = True

    return Handler


@contextmanager
def scripted_llm(script: list[dict[str, Any]]) -> Iterator[ScriptedLLM]:
    """Serve ``script`` on 127.0.0.1 (a free port) for the duration of the block."""
    state = ScriptedLLM(script)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        state.closing.set()
        server.shutdown()
        server.server_close()
