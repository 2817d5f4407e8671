"""Waiting on a condition, never on a fixed sleep: a slow machine waits longer, a fast one less."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(predicate: Callable[[], object], what: str, *, timeout: float = 20.0) -> None:
    """Until ``predicate()`` is truthy (checked every few milliseconds); fail naming ``what``.

    The interval only bounds how late the caller notices; ``timeout`` is a failure, not a pace.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.01)
