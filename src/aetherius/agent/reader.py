"""Follow a kernel log file (or ``/dev/kmsg``) line by line, with back-pressure and rotation.

A regular file is read in chunks from its last ``start_window`` bytes (older records are past the
lookback anyway), then followed as it grows; a new inode or a file that shrank (rotation,
truncation) is read again from its start. Lines longer than ``max_line_bytes`` are cut there
(counted). ``on_line`` is awaited for every line, so a slow consumer slows the reading, never
memory: the file keeps what was not read yet. The reader never dies quietly: any failure is kept
in ``error`` and retried, and ``heartbeat`` says when it last looked (``/health/live``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from aetherius.logs import get_logger

__all__ = ["LINES", "LogFileReader"]

log = get_logger(__name__)

LINES = Counter(
    "aetherius_node_agent_kernel_lines_total",
    "Kernel log lines read by the node agent, by what became of them",
    ["outcome"],  # read | matched | truncated | skipped_old
)
_CHUNK = 64 * 1024


class LogFileReader:
    def __init__(
        self,
        path: str,
        *,
        on_line: Callable[[str], Awaitable[None]],
        max_line_bytes: int = 4096,
        poll_interval: float = 0.5,
        start_window: int = 8 * 1024 * 1024,
    ) -> None:
        self.path = path
        self.on_line = on_line
        self.max_line_bytes = max_line_bytes
        self.poll_interval = poll_interval
        self.start_window = start_window
        self.heartbeat = time.monotonic()
        self.error = ""
        self.lines = 0
        self._kmsg = path == "/dev/kmsg"
        self._discarding = False  # inside an over-long line whose head was handed over

    async def run(self, stop: asyncio.Event) -> None:
        first = True
        while not stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                if self._kmsg:
                    await self._follow_kmsg(stop)
                else:
                    await self._follow_file(stop, from_start=not first)
                    first = False
            except OSError as exc:
                self.error = f"{self.path}: {exc.strerror or exc}"
                log.warning("kernel log not readable; retrying", path=self.path, error=self.error)
                await _wait(stop, max(self.poll_interval, 1.0))

    async def _follow_file(self, stop: asyncio.Event, *, from_start: bool) -> None:
        with open(self.path, "rb") as handle:  # noqa: ASYNC230 (a local file, read in small chunks)
            inode = os.fstat(handle.fileno()).st_ino
            size = os.fstat(handle.fileno()).st_size
            position = 0 if from_start else max(0, size - self.start_window)
            handle.seek(position)
            pending = b""
            self._discarding = False
            skip_partial = position > 0
            self.error = ""
            while not stop.is_set():
                self.heartbeat = time.monotonic()
                chunk = handle.read(_CHUNK)
                if chunk:
                    position += len(chunk)
                    pending = await self._lines(pending + chunk, skip_partial=skip_partial)
                    skip_partial = False
                    continue
                try:
                    current = os.stat(self.path)
                except FileNotFoundError:
                    current = None
                if current is not None and (current.st_ino != inode or current.st_size < position):
                    return  # rotated or truncated: read the new file from its start
                await _wait(stop, self.poll_interval)

    async def _lines(self, data: bytes, *, skip_partial: bool) -> bytes:
        """Hand over every complete line of ``data``; return the incomplete rest (bounded)."""
        *complete, rest = data.split(b"\n")
        if skip_partial and complete:
            complete = complete[1:]  # the first line of a read that started mid-file is a tail
        for raw in complete:
            if self._discarding:
                self._discarding = False  # the end of a line already handed over, cut
                continue
            await self._emit(raw)
        if self._discarding:
            return b""
        if len(rest) > self.max_line_bytes:
            # NB: a line without an end yet that is already too long: hand over its head now and
            # drop the rest of it as it comes (it cannot be matched whole anyway).
            await self._emit(rest)
            self._discarding = True
            return b""
        return rest

    async def _emit(self, raw: bytes) -> None:
        if len(raw) > self.max_line_bytes:
            raw = raw[: self.max_line_bytes]
            LINES.labels(outcome="truncated").inc()
        self.lines += 1
        LINES.labels(outcome="read").inc()
        await self.on_line(raw.decode("utf-8", "replace").replace("\x00", ""))

    async def _follow_kmsg(self, stop: asyncio.Event) -> None:
        """One record per read(2); non-blocking, polled (EAGAIN: nothing new)."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            self.error = ""
            while not stop.is_set():
                self.heartbeat = time.monotonic()
                try:
                    record = os.read(fd, 8192)
                except BlockingIOError:
                    await _wait(stop, self.poll_interval)
                    continue
                except OSError as exc:
                    if exc.errno == errno.EPIPE:  # overwritten in the ring buffer before it was read
                        LINES.labels(outcome="skipped_old").inc()
                        continue
                    raise
                await self._emit(record.rstrip(b"\n"))
        finally:
            os.close(fd)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
