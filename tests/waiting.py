"""Waiting on a condition, never on a fixed sleep: a slow machine waits longer, a fast one less."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

_FIRST_PAUSE = 0.01
_LONGEST_PAUSE = 0.2


async def until(
    check: Callable[[], Any], what: str, *, timeout: float = 20.0, explain: Callable[[], str] = lambda: ""
) -> Any:
    """Until ``check()`` (plain or async) returns something truthy, and return it; fail naming ``what``.

    The pause between checks starts at a few milliseconds (a condition that is nearly true is seen at
    once) and grows to a fifth of a second (a check that queries a database does not hammer it). The
    pause only bounds how late the caller notices; ``timeout`` is a failure, not a pace. ``explain``
    adds what the caller knows on failure, such as the logs of the processes it waited on.
    """
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})\n{explain()}".rstrip())
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
