"""Bare NATS clients as a member cluster's user: what the security tests try against the hub.

An ``Edge`` keeps every asynchronous error the server sent it, so a test can say exactly which
refusal a forbidden publish or subscription met.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client

from aetherius.config import MessageBusSettings
from aetherius.fleet.identity import EdgeCredential
from tests.hub import PATIENCE

BUS = MessageBusSettings()
STREAM = BUS.stream  # AETHERIUS_SIGNALS
BUCKET = BUS.kv_bucket  # aetherius_state


@dataclass
class Edge:
    """An edge agent's connection, with every asynchronous error the server sent it, in order."""

    credential: EdgeCredential
    nc: Client
    errors: asyncio.Queue[Exception] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def next_error(self) -> str:
        return str(await asyncio.wait_for(self.errors.get(), timeout=PATIENCE))

    async def refused(self, action: Callable[[], Awaitable[Any]]) -> str:
        """Run ``action`` and return the error the server answered it with."""
        await action()
        await self.nc.flush(timeout=PATIENCE)
        return await self.next_error()


async def connect_edge(url: str, credential: EdgeCredential, **options: Any) -> Edge:
    errors: asyncio.Queue[Exception] = asyncio.Queue()
    closed = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        errors.put_nowait(exc)

    async def on_closed() -> None:
        closed.set()

    nc = await nats.connect(
        url,
        allow_reconnect=False,
        error_cb=on_error,
        closed_cb=on_closed,
        **credential.connect_options(BUS),
        **options,
    )
    return Edge(credential=credential, nc=nc, errors=errors, closed=closed)


def violation(kind: str, subject: str) -> str:
    """The exact refusal nats-py reports for a denied publish or subscription (it lower-cases it)."""
    return f'nats: permissions violation for {kind} to "{subject.lower()}"'
