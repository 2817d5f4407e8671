"""Faults injected on demand: what a flaky API server, a proxy or a slow network does to clients.

Request faults (429, 500) are consumed by the next matching requests; watch faults act on the
watch connections open right now (or the next ones to connect). Everything is counted in
``injected`` so tests can assert a fault really happened.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aetherius.sim import errors


@dataclass(eq=False)
class WatchConn:
    """One open watch stream; the fault switches below are polled by its send loop."""

    path: str
    close: bool = False
    abort: bool = False
    gone: bool = False
    stall_until: float = 0.0
    events_sent: int = 0


@dataclass
class _RequestFault:
    remaining: int
    make: Callable[[], errors.ApiError]
    path_prefix: str | None = None


@dataclass
class Faults:
    """Fault switches. Call from the server's event loop (the thread handle marshals for you)."""

    wake: Callable[[], None] = lambda: None
    open_watches: set[WatchConn] = field(default_factory=set)
    injected: Counter[str] = field(default_factory=Counter)
    _request_faults: list[_RequestFault] = field(default_factory=list)
    _gone_on_connect: int = 0
    _gone_on_connect_in_stream: bool = False
    _expire_snapshots: Callable[[], None] = lambda: None
    continue_tokens_issued: int = 0
    _paging: asyncio.Event = field(default_factory=asyncio.Event)

    def close_watches(self, *, abort: bool = False) -> int:
        """End every open watch now: cleanly (end of chunked body) or, with ``abort``, by a reset."""
        for conn in self.open_watches:
            conn.close, conn.abort = True, abort
        self.injected["close_watches"] += len(self.open_watches)
        self.wake()
        return len(self.open_watches)

    def gone_on_connect(self, n: int = 1, *, in_stream: bool = False) -> None:
        """The next ``n`` watch connects get 410 Expired: an HTTP 410 Status, or (``in_stream``)
        HTTP 200 with one ``ERROR`` event, which is what a real server's watch cache sends."""
        self._gone_on_connect = n
        self._gone_on_connect_in_stream = in_stream

    def take_gone_on_connect(self) -> bool | None:
        """None: no fault; False: answer HTTP 410; True: answer 200 + in-stream ERROR."""
        if self._gone_on_connect <= 0:
            return None
        self._gone_on_connect -= 1
        self.injected["gone_on_connect"] += 1
        return self._gone_on_connect_in_stream

    def gone_in_stream(self) -> int:
        """Every open watch receives an ``ERROR`` event with a 410 Status, then ends."""
        for conn in self.open_watches:
            conn.gone = True
        self.injected["gone_in_stream"] += len(self.open_watches)
        self.wake()
        return len(self.open_watches)

    def stall(self, seconds: float) -> int:
        """Open watches send nothing (no events, no bookmarks) for ``seconds``, staying open."""
        until = time.monotonic() + seconds
        for conn in self.open_watches:
            conn.stall_until = until
        self.injected["stall"] += len(self.open_watches)
        self.wake()
        return len(self.open_watches)

    def throttle(self, n: int = 1, *, retry_after: float = 1.0, path_prefix: str | None = None) -> None:
        """The next ``n`` API requests get 429 TooManyRequests with ``Retry-After``."""
        self._request_faults.append(
            _RequestFault(n, lambda: errors.too_many_requests(retry_after), path_prefix)
        )

    def error(self, n: int = 1, *, status: int = 500, path_prefix: str | None = None) -> None:
        """The next ``n`` API requests (only paths starting with ``path_prefix``, if given) fail."""
        self._request_faults.append(
            _RequestFault(n, lambda: errors.internal_error(status, "injected fault"), path_prefix)
        )

    def expire_continue_tokens(self) -> None:
        """Every continue token handed out so far answers 410 Expired (as after a compaction)."""
        self._expire_snapshots()
        self.injected["expire_continue_tokens"] += 1

    def continue_token_issued(self) -> None:
        """Called by the server when a list page carries a continue token (more pages to come)."""
        self.continue_tokens_issued += 1
        self._paging.set()

    async def paged_list_started(self) -> None:
        """Until the server has handed out a continue token: a paged list is then in progress, and
        its client has not yet had the answer (this wakes before the page reaches it)."""
        await self._paging.wait()

    def reset(self) -> None:
        """Drop every pending fault (open watches keep running)."""
        self._request_faults.clear()
        self._gone_on_connect = 0
        for conn in self.open_watches:
            conn.stall_until = 0.0
        self.wake()

    def take_request_fault(self, path: str) -> errors.ApiError | None:
        for fault in self._request_faults:
            if fault.remaining > 0 and (fault.path_prefix is None or path.startswith(fault.path_prefix)):
                fault.remaining -= 1
                error = fault.make()
                self.injected[f"http_{error.code}"] += 1
                if fault.remaining == 0:
                    self._request_faults.remove(fault)
                return error
        return None
