"""Bounds on what one request may cost: body size, wall time, and requests per token.

Both middlewares are plain ASGI so they act before FastAPI parses anything: an oversized body is
refused without being read into a model, and a handler stuck on a slow store is cut off with a
504 problem instead of holding the connection forever.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aetherius.api.problems import problem_response


class BodyLimitMiddleware:
    """Read the whole body (up to ``max_bytes``) before the app sees it; 413 beyond.

    NB: buffering is deliberate: a webhook must be validated as a whole before any Signal is
    published, so nothing ever acts on the first half of a body that turns out to be too large.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            status=413,
            detail=f"the request body exceeds the limit of {self.max_bytes} bytes",
            instance=str(scope.get("path", "")),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class TimeoutMiddleware:
    """Cancel a request that runs longer than ``seconds``; answer 504 if nothing was sent yet.

    Streams (server-sent events) are exempt by path prefix or suffix: they are meant to stay open.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        seconds: float,
        exempt_prefixes: Collection[str] = (),
        exempt_suffixes: Collection[str] = (),
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.exempt = tuple(exempt_prefixes)
        self.exempt_suffixes = tuple(exempt_suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(self.exempt) or path.endswith(self.exempt_suffixes):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                return
            response = problem_response(
                status=504,
                detail=f"the request did not complete within {self.seconds:g}s",
                instance=str(scope.get("path", "")),
            )
            await response(scope, receive, send)


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
