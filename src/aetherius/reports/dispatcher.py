"""The notification dispatcher: sends the outbox's due deliveries, retrying with backoff.

Any number of dispatchers may run (one per orchestrator replica): each claims deliveries with a
lease, so none is sent twice at once, and one that dies mid-send leaves its claim to expire and
be taken again. A failing sink is retried forever with capped exponential backoff: it delays a
notice, never loses it. Every send, failure and retry is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
from prometheus_client import Counter

from aetherius.backoff import exponential
from aetherius.config import NotificationSettings, NotificationSinkSettings
from aetherius.logs import get_logger
from aetherius.reports.sinks import encode_request
from aetherius.store import Delivery, NotFound, Store

log = get_logger(__name__)

SENT = Counter("aetherius_notifications_sent_total", "Notifications delivered", ["sink", "event"])
FAILED = Counter("aetherius_notification_attempts_failed_total", "Failed notification attempts", ["sink"])
DROPPED = Counter(
    "aetherius_notifications_dropped_total", "Deliveries for sinks no longer configured", ["sink"]
)


class SinkRefused(Exception):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotificationDispatcher:
    def __init__(
        self,
        store: Store,
        settings: NotificationSettings,
        *,
        http: aiohttp.ClientSession | None = None,
        batch: int = 20,
        poll_interval: float = 1.0,
        lease: float | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._sinks = {sink.name: sink for sink in settings.sinks}
        self._http = http
        self._own_http = http is None
        self._batch = batch
        self._poll_interval = poll_interval
        timeout = settings.request_timeout.total_seconds()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # NB: the lease outlives one request by a margin, so a slow but successful send is not retaken.
        self._lease = timeout * 2 + 5 if lease is None else lease

    async def __aenter__(self) -> NotificationDispatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set; a store outage is waited out, not fatal."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception as exc:  # NB: e.g. the database restarting; try again after a pause
                log.warning("notification_dispatch_failed", error=str(exc))
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._poll_interval)

    async def run_once(self) -> int:
        """Claim and attempt every due delivery once; the number attempted."""
        deliveries = await self._store.claim_deliveries(limit=self._batch, lease=self._lease)
        await asyncio.gather(*(self._attempt(d) for d in deliveries))
        return len(deliveries)

    async def _attempt(self, delivery: Delivery) -> None:
        sink = self._sinks.get(delivery.sink)
        if sink is None:
            DROPPED.labels(delivery.sink).inc()
            await self._store.mark_delivery_dropped(
                delivery.id, error=f"sink {delivery.sink!r} is not configured"
            )
            return
        try:
            await self._send(sink, delivery)
        except NotFound:
            await self._store.mark_delivery_dropped(delivery.id, error="incident no longer exists")
        except (SinkRefused, aiohttp.ClientError, TimeoutError, OSError) as exc:
            FAILED.labels(sink.name).inc()
            retry_after = exc.retry_after if isinstance(exc, SinkRefused) else None
            delay = exponential(
                delivery.attempts,
                base=self._settings.base_backoff.total_seconds(),
                cap=self._settings.max_backoff.total_seconds(),
                jitter=0.2,
            )
            delay = max(delay, min(retry_after or 0.0, self._settings.max_backoff.total_seconds()))
            message = str(exc) or type(exc).__name__
            log.warning(
                "notification_retry",
                sink=sink.name,
                delivery=delivery.id,
                attempt=delivery.attempts,
                retry_in=round(delay, 3),
                error=message,
            )
            await self._store.mark_delivery_failed(delivery.id, error=message, retry_in=delay)
        else:
            SENT.labels(sink.name, delivery.event).inc()
            await self._store.mark_delivered(delivery.id)

    async def _send(self, sink: NotificationSinkSettings, delivery: Delivery) -> None:
        incident = await self._store.get_incident(delivery.incident_id)
        report = await self._store.latest_report(delivery.incident_id)
        affects = await self._store.downstream_incidents(delivery.incident_id)
        body, headers = encode_request(
            sink, delivery, incident, report, now=int(time.time()), affects=affects
        )
        async with self._session().post(
            sink.url, data=body, headers=headers, timeout=self._timeout
        ) as response:
            if 200 <= response.status < 300:
                return
            text = (await response.text())[:200]
            retry_after: float | None = None
            header = response.headers.get("Retry-After", "")
            if header.isdigit():
                retry_after = float(header)
            raise SinkRefused(
                f"{sink.type} sink {sink.name} answered {response.status}: {text}", retry_after=retry_after
            )
