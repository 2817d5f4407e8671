"""One watch connection: replay from a resourceVersion, then follow live changes.

The send loop reads the store's history by index, so replay and live streaming are the same
code: take every change after the last one sent, filter, write them in large batches (each
change's line was encoded once at commit), then wait for the next commit, a fault, the next
bookmark or the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from aetherius.sim import errors
from aetherius.sim.faults import Faults, WatchConn
from aetherius.sim.resources import ResourceType
from aetherius.sim.selectors import Matcher
from aetherius.sim.store import Change, Obj, Store, encode_event

BATCH_BYTES = 1 << 20  # write replay in ~1 MiB chunks
BATCH_CHANGES = 20_000
DEFAULT_TIMEOUT = 1800.0  # the real server's --min-request-timeout


@dataclass(kw_only=True)
class WatchSpec:
    rt: ResourceType
    namespace: str | None
    matcher: Matcher | None
    resource_version: str
    timeout: float
    bookmarks: bool
    send_initial_events: bool
    # Turns a stored object into what this client sees (events.k8s.io view, Table rows).
    view: Callable[[Obj], Obj] | None = None
    present: Callable[[Obj], Obj] | None = None


def parse_bool(value: str | None) -> bool:
    """Go's strconv.ParseBool truths (the official Python client sends ``True``)."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def parse_watch_params(query: Any, rt: ResourceType, namespace: str | None) -> dict[str, Any]:
    timeout_raw = query.get("timeoutSeconds")
    try:
        timeout = float(timeout_raw) if timeout_raw not in (None, "") else DEFAULT_TIMEOUT
    except ValueError:
        raise errors.bad_request(f"invalid timeoutSeconds: {timeout_raw!r}") from None
    return {
        "rt": rt,
        "namespace": namespace,
        "resource_version": query.get("resourceVersion", "") or "",
        "timeout": timeout,
        "bookmarks": parse_bool(query.get("allowWatchBookmarks")),
        "send_initial_events": parse_bool(query.get("sendInitialEvents")),
    }


def _error_line(error: errors.ApiError) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": error.status()}) + b"\n"


class WatchStream:
    """Serves one watch request to completion."""

    def __init__(self, *, store: Store, faults: Faults, spec: WatchSpec, bookmark_interval: float) -> None:
        self.store = store
        self.faults = faults
        self.spec = spec
        self.bookmark_interval = bookmark_interval
        self.conn = WatchConn(path=spec.rt.qualified)

    def _filtered(self, changes: list[Change]) -> list[bytes]:
        spec = self.spec
        key, namespace = spec.rt.key, spec.namespace
        if spec.matcher is None and spec.view is None and spec.present is None:
            if namespace is None:
                return [c.line for c in changes if c.key == key]
            return [c.line for c in changes if c.key == key and c.namespace == namespace]
        lines: list[bytes] = []
        for change in changes:
            if change.key != key or (namespace is not None and change.namespace != namespace):
                continue
            line = self._transition(change)
            if line is not None:
                lines.append(line)
        return lines

    def _transition(self, change: Change) -> bytes | None:
        """The event this client sees: selector transitions turn MODIFIED into ADDED/DELETED."""
        spec = self.spec
        stored = change.object()
        obj = spec.view(stored) if spec.view else stored
        event_type = change.type
        if spec.matcher is not None:
            now_match = spec.matcher(obj)
            if change.type == "MODIFIED" and change.old is not None:
                old = spec.view(change.old) if spec.view else change.old
                was_match = spec.matcher(old)
                if not now_match and not was_match:
                    return None
                if not was_match:
                    event_type = "ADDED"
                elif not now_match:
                    event_type = "DELETED"
            elif not now_match:
                return None
        if spec.view is None and spec.present is None and event_type == change.type:
            return change.line
        return encode_event(event_type, spec.present(obj) if spec.present else obj)

    def _initial_lines(self) -> list[bytes]:
        spec = self.spec
        lines = []
        for stored in self.store.objects(spec.rt, spec.namespace):
            obj = spec.view(stored) if spec.view else stored
            if spec.matcher is None or spec.matcher(obj):
                lines.append(encode_event("ADDED", spec.present(obj) if spec.present else obj))
        return lines

    def _bookmark(self, rv: int, *, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.spec.rt.kind, "apiVersion": self.spec.rt.api_version, "metadata": meta}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    async def serve(self, request: web.Request) -> web.StreamResponse:
        spec = self.spec
        in_stream = self.faults.take_gone_on_connect()
        if in_stream is False:
            raise errors.gone("too old resource version: injected fault")
        rv_text = spec.resource_version
        initial: list[bytes] = []
        early_error: errors.ApiError | None = errors.gone("too old resource version") if in_stream else None
        if rv_text in ("", "0"):
            position = self.store.resource_version
            initial = self._initial_lines()
            if spec.send_initial_events and spec.bookmarks:
                initial.append(self._bookmark(position, initial_end=True))
        else:
            try:
                position = int(rv_text)
            except ValueError:
                raise errors.bad_request(f"invalid resource version: {rv_text!r}") from None
            if position < self.store.compacted_rv and early_error is None:
                early_error = errors.too_old(position, self.store.compacted_rv + 1)

        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self.faults.open_watches.add(self.conn)
        try:
            if early_error is not None:
                await response.write(_error_line(early_error))
            else:
                if initial:
                    await self._write(response, initial)
                await self._follow(response, position)
            if self.conn.abort and request.transport is not None:
                request.transport.abort()  # a reset mid-body: no terminating chunk
                return response
            with contextlib.suppress(ConnectionError, RuntimeError):
                await response.write_eof()
        except ConnectionError:
            pass
        finally:
            self.faults.open_watches.discard(self.conn)
        return response

    async def _write(self, response: web.StreamResponse, lines: list[bytes]) -> None:
        self.conn.events_sent += len(lines)
        batch: list[bytes] = []
        size = 0
        for line in lines:
            batch.append(line)
            size += len(line)
            if size >= BATCH_BYTES:
                await response.write(b"".join(batch))
                batch, size = [], 0
        if batch:
            await response.write(b"".join(batch))

    async def _follow(self, response: web.StreamResponse, position: int) -> None:
        conn, spec, store = self.conn, self.spec, self.store
        deadline = time.monotonic() + spec.timeout
        next_bookmark = time.monotonic() + self.bookmark_interval
        while True:
            now = time.monotonic()
            if conn.close:
                return
            if conn.gone:
                await response.write(_error_line(errors.gone("too old resource version: injected fault")))
                return
            if conn.stall_until > now:
                await self._sleep(min(conn.stall_until, deadline) - now)
                if time.monotonic() >= deadline:
                    return
                continue
            if now >= deadline:
                if spec.bookmarks:
                    await response.write(self._bookmark(position))
                return
            if position < store.resource_version:
                if position < store.compacted_rv:
                    error = errors.too_old(position, store.compacted_rv + 1)
                    await response.write(_error_line(error))
                    return
                changes = store.changes_after(position, limit=BATCH_CHANGES)
                lines = self._filtered(changes)
                position = changes[-1].rv
                if lines:
                    await self._write(response, lines)
                continue
            if spec.bookmarks and now >= next_bookmark:
                await response.write(self._bookmark(position))
                next_bookmark = now + self.bookmark_interval
                continue
            wake_at = min(deadline, next_bookmark) if spec.bookmarks else deadline
            changed = store.changed_event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=max(0.0, wake_at - now))

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early when a fault (close, 410, stall reset) is switched."""
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0 and not (self.conn.close or self.conn.gone):
            if self.conn.stall_until <= time.monotonic():
                return
            changed = self.store.changed_event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, 0.5))
