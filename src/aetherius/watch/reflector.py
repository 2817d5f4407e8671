"""A reflector-grade list+watch of one resource, modelled on client-go's reflector.

- Paged LIST (a 410 on a ``continue`` token restarts the list: pages of two snapshots never mix),
  then WATCH from the list's resourceVersion with bookmarks and a jittered ``timeoutSeconds``.
- Every event's resourceVersion is remembered; a watch that ends (server timeout, closed
  connection, inactivity timeout on a half-open connection) resumes from it, not from a list.
- 410 Gone (HTTP or an in-stream ``ERROR``) → relist. 429 → wait ``Retry-After``. Other errors
  and connection failures → jittered exponential backoff 0.8 s → 30 s, reset by progress.
- Decoding is msgspec into Structs with only the fields Signals need (``watch/model.py``).
- Every ``resync_period`` (0: never) the next watch that ends is followed by a relist, so a change
  a watch could have missed is seen at the latest one period later (Signals already published are
  not re-sent: the dedup window and the bus's message ids). ``list_slots`` bounds how many
  reflectors LIST at once (``worker_count``): a watcher of many namespaces does not list them all
  at the same moment.

The reflector keeps no objects: it hands each one to its sink and forgets it. The sink decides
when the cursor may advance (after the bus acknowledged what the object produced).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from aetherius.backoff import exponential
from aetherius.config import WatcherSettings
from aetherius.kube import KubeApiError, KubeClient, KubeConnectionError
from aetherius.logs import get_logger
from aetherius.ops.metrics import WATCH_EVENTS, WATCH_RELISTS, WATCH_RESTARTS
from aetherius.watch import model
from aetherius.watch.model import WatchChange

log = get_logger(__name__)

BACKOFF_START = 0.8
BACKOFF_MAX = 30.0


@dataclass(frozen=True, kw_only=True)
class ResourceSpec:
    name: str  # "events" | "pods"
    cluster_path: str
    namespaced_path: str
    list_decoder: msgspec.json.Decoder[Any]
    watch_decoder: msgspec.json.Decoder[Any]
    chunk_decoder: msgspec.json.Decoder[Any]  # a JSON array of watch events
    change: Callable[[str, Any], WatchChange]  # a listed item as an ADDED change

    def path(self, namespace: str | None) -> str:
        return self.namespaced_path.format(namespace=namespace) if namespace else self.cluster_path


EVENTS = ResourceSpec(
    name="events",
    cluster_path="/api/v1/events",
    namespaced_path="/api/v1/namespaces/{namespace}/events",
    list_decoder=msgspec.json.Decoder(model.EventList),
    watch_decoder=msgspec.json.Decoder(model.EventWatchEvent),
    chunk_decoder=msgspec.json.Decoder(list[model.EventWatchEvent]),
    change=model.EventWatchEvent,
)
PODS = ResourceSpec(
    name="pods",
    cluster_path="/api/v1/pods",
    namespaced_path="/api/v1/namespaces/{namespace}/pods",
    list_decoder=msgspec.json.Decoder(model.PodList),
    watch_decoder=msgspec.json.Decoder(model.PodWatchEvent),
    chunk_decoder=msgspec.json.Decoder(list[model.PodWatchEvent]),
    change=model.PodWatchEvent,
)
_STATUS_EVENT = msgspec.json.Decoder(model.StatusWatchEvent)


class ReflectorSink(Protocol):
    """Where a reflector's objects go, a received chunk (or a list page) at a time, in order.

    ``rv`` is the resourceVersion after the last change handed over, ``None`` for list items:
    the list's resourceVersion is only a safe cursor once *every* item was handled
    (``checkpoint``)."""

    def relist_started(self, reflector: Reflector) -> None: ...

    async def handle(self, reflector: Reflector, changes: Sequence[WatchChange], rv: str | None) -> None: ...

    async def checkpoint(self, reflector: Reflector, rv: str) -> None: ...

    async def watch_gone(self, reflector: Reflector, *, quiet_for: float) -> None:
        """The watch expired (410): what happened in the last ``quiet_for`` seconds may be lost."""


class Gone(Exception):
    """The resourceVersion we hold is too old: only a relist can continue."""


class Reflector:
    def __init__(
        self,
        *,
        client: KubeClient,
        spec: ResourceSpec,
        sink: ReflectorSink,
        settings: WatcherSettings,
        namespace: str | None = None,
        resource_version: str | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        list_slots: asyncio.Semaphore | None = None,
    ) -> None:
        self.client = client
        self.spec = spec
        self.sink = sink
        self.settings = settings
        self.namespace = namespace
        self.path = spec.path(namespace)
        self.key = f"{spec.name}.{namespace or '_all'}"  # the cursor's name
        self.resource_version = resource_version or None  # last seen; None: must list first
        self.synced = False  # the first list (or a resumed watch) completed
        self.last_progress = time.monotonic()
        self.events_seen = 0
        self.relists = 0
        self._failures = 0
        self._sleep = sleep
        self._stopping = False
        self._list_slots = list_slots
        self._listed_at = time.monotonic()

    def stop(self) -> None:
        """Stop after the line being handled; ``run`` returns."""
        self._stopping = True

    def _progress(self) -> None:
        self.last_progress = time.monotonic()

    async def run(self) -> None:
        while not self._stopping:
            try:
                if self.resource_version is None:
                    await self._list()
                await self._watch()
                self._failures = 0
                WATCH_RESTARTS.labels(resource=self.spec.name, cause="closed").inc()
                if self._resync_due():
                    log.info("resync: relisting", resource=self.key)
                    self.resource_version = None
                    WATCH_RELISTS.labels(resource=self.spec.name, cause="resync").inc()
            except Gone:
                log.info(
                    "watch expired, relisting", resource=self.key, resource_version=self.resource_version
                )
                await self.sink.watch_gone(self, quiet_for=time.monotonic() - self.last_progress)
                self.resource_version = None
                WATCH_RELISTS.labels(resource=self.spec.name, cause="gone").inc()
                WATCH_RESTARTS.labels(resource=self.spec.name, cause="gone").inc()
            except KubeApiError as exc:
                if exc.gone:
                    await self.sink.watch_gone(self, quiet_for=time.monotonic() - self.last_progress)
                    self.resource_version = None
                    WATCH_RELISTS.labels(resource=self.spec.name, cause="gone").inc()
                    WATCH_RESTARTS.labels(resource=self.spec.name, cause="gone").inc()
                    continue
                if exc.status == 429:
                    wait = exc.retry_after if exc.retry_after is not None else 1.0
                    WATCH_RESTARTS.labels(resource=self.spec.name, cause="throttled").inc()
                    log.warning("throttled by the API server", resource=self.key, retry_after=wait)
                    await self._sleep(wait)
                    continue
                WATCH_RESTARTS.labels(resource=self.spec.name, cause=f"http_{exc.status}").inc()
                log.warning("watch failed", resource=self.key, status=exc.status, error=exc.message)
                await self._back_off()
            except KubeConnectionError as exc:
                WATCH_RESTARTS.labels(resource=self.spec.name, cause="connection").inc()
                log.warning("watch connection failed", resource=self.key, error=str(exc))
                await self._back_off()
            except msgspec.DecodeError as exc:
                WATCH_RESTARTS.labels(resource=self.spec.name, cause="bad_json").inc()
                log.warning("undecodable watch line; re-watching", resource=self.key, error=str(exc))
                await self._back_off()

    def _resync_due(self) -> bool:
        period = self.settings.resync_period.total_seconds()
        return period > 0 and time.monotonic() - self._listed_at >= period

    async def _back_off(self) -> None:
        self._failures += 1
        await self._sleep(exponential(self._failures, base=BACKOFF_START, cap=BACKOFF_MAX, jitter=0.2))

    async def _list(self) -> None:
        """One consistent paged LIST, in one of the ``worker_count`` list slots."""
        if self._list_slots is None:
            await self._paged_list()
            return
        async with self._list_slots:
            await self._paged_list()

    async def _paged_list(self) -> None:
        """``Gone`` on an expired continue token restarts the list."""
        self.relists += 1
        self.sink.relist_started(self)
        params: dict[str, str | int | bool | None] = {"limit": self.settings.page_size}
        while True:
            try:
                body = await self.client.get_bytes(self.path, params=params)
            except KubeApiError as exc:
                if exc.gone and "continue" in params:
                    log.info("continue token expired, restarting the list", resource=self.key)
                    WATCH_RELISTS.labels(resource=self.spec.name, cause="continue_expired").inc()
                    self.sink.relist_started(self)
                    params = {"limit": self.settings.page_size}
                    continue
                raise
            page = self.spec.list_decoder.decode(body)
            if page.items:
                change = self.spec.change
                await self.sink.handle(self, [change("ADDED", item) for item in page.items], None)
            self._progress()
            token = page.metadata.continue_
            if not token:
                break
            params["continue"] = token
        rv = page.metadata.resourceVersion
        await self.sink.checkpoint(self, rv)
        self.resource_version = rv
        self.synced = True
        self._listed_at = time.monotonic()
        WATCH_RELISTS.labels(resource=self.spec.name, cause="list").inc()

    def _timeout_seconds(self) -> int:
        low = self.settings.watch_timeout_min.total_seconds()
        high = max(low, self.settings.watch_timeout_max.total_seconds())
        return max(1, int(random.uniform(low, high)))

    async def _watch(self) -> None:
        params: dict[str, str | int | bool | None] = {
            "watch": "true",
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": self._timeout_seconds(),
        }
        counted = WATCH_EVENTS.labels(resource=self.spec.name, type="any")
        async with self.client.stream_line_blocks(
            self.path, params=params, inactivity_timeout=self.settings.read_inactivity_timeout.total_seconds()
        ) as batches:
            self.synced = True
            async for block in batches:
                self.last_progress = time.monotonic()
                seen = await self._block(block)
                self.events_seen += seen
                counted.inc(seen)
                self._failures = 0

    async def _block(self, block: bytes) -> int:
        """Decode one received block of lines, hand its changes over in order; the count.

        The block is decoded as one JSON array (one decoder call, not one per line); a block
        holding a line that does not decode as a watch event of this resource (an ``ERROR``
        whose object is a ``Status``, a bad or a blank line) is decoded line by line instead.
        """
        try:
            events = self.spec.chunk_decoder.decode(b"[%b]" % block.replace(b"\n", b","))
        except msgspec.DecodeError:
            pass
        else:
            await self._changes(events, block)
            return len(events)
        lines = [line for line in block.split(b"\n") if line.strip()]
        events = []
        decoder = self.spec.watch_decoder
        for line in lines:
            try:
                events.append(decoder.decode(line))
            except msgspec.DecodeError as exc:
                # NB: what came before the bad line is handed over first: the watch
                # resumes after it, so dropping it here would lose it.
                await self._changes(events, lines)
                if isinstance(exc, msgspec.ValidationError):
                    self._raise_status(line)
                raise
        await self._changes(events, lines)
        return len(lines)

    async def _changes(self, events: list[Any], source: bytes | list[bytes]) -> None:
        """Hand ``events`` (decoded from ``source``, its lines or a block of them, in order) to
        the sink; bookmarks move the cursor, an ``ERROR`` raises once what came before it was
        handed over."""
        changes: list[WatchChange] = []
        rv = ""  # of the last change in ``changes``
        for index, event in enumerate(events):
            watch_type = event.type
            if watch_type == "BOOKMARK" or watch_type == "ERROR":
                await self._hand_over(changes, rv)
                changes, rv = [], ""
                if watch_type == "ERROR":
                    lines = source if isinstance(source, list) else source.split(b"\n")
                    self._raise_status(lines[index])
                    raise KubeApiError(status=500, reason="Error", message="watch ERROR event")
                bookmark = event.object.metadata.resourceVersion
                await self.sink.checkpoint(self, bookmark)
                if bookmark:
                    self.resource_version = bookmark
                continue
            changes.append(event)
            rv = event.object.metadata.resourceVersion or rv
        await self._hand_over(changes, rv)

    async def _hand_over(self, changes: list[WatchChange], rv: str) -> None:
        if changes:
            await self.sink.handle(self, changes, rv or None)
        if rv:
            self.resource_version = rv

    def _raise_status(self, line: bytes) -> None:
        status = _STATUS_EVENT.decode(line)
        if status.type != "ERROR":
            return
        if status.object.code == 410:
            raise Gone(status.object.message)
        raise KubeApiError(
            status=status.object.code or 500,
            reason=status.object.reason or "Error",
            message=status.object.message or "watch ERROR event",
        )
