"""A notification receiver on loopback: a real HTTP endpoint that can fail or hang on purpose.

``receiver`` (a fixture of tests/conftest.py) serves ``/hook`` (signed webhooks, checked with
``SECRET``) and ``/slack``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from aetherius.reports import verify
from aetherius.reports.sinks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.services import free_port

SECRET = "s3cret-key"


@dataclass
class Receiver:
    """A webhook endpoint: answers 500 to the first ``fail_first`` requests, can hang on demand."""

    fail_first: int = 0
    hang: asyncio.Event | None = None
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        entry = {"path": request.path, "headers": dict(request.headers), "body": body}
        self.requests.append(entry)
        self.arrived.set()
        if self.hang is not None and not self.hang.is_set():
            await self.hang.wait()
        if len(self.requests) <= self.fail_first:
            return web.Response(status=500, text="receiver down")
        if request.path == "/hook":
            headers = request.headers
            if not verify(SECRET, headers.get(TIMESTAMP_HEADER, ""), body, headers.get(SIGNATURE_HEADER, "")):
                return web.Response(status=401, text="bad signature")
        self.accepted.append({**entry, "json": json.loads(body)})
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def serving_receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    app.router.add_post("/slack", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        if state.hang is not None:
            state.hang.set()
        await runner.cleanup()
