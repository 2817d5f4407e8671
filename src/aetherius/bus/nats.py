"""``NatsBus``: Signals on NATS JetStream.

- One stream (``message_bus.stream``) holds ``<prefix>.>``; a Signal goes to
  ``<prefix>.<cluster_id>.<source>``, so one stream serves one cluster or many (agent mode) and a
  consumer may filter on one cluster.
- ``Nats-Msg-Id`` is ``signal.msg_id`` and the stream's duplicate window is long (an hour by
  default), so a relist or a restart that re-publishes an occurrence is dropped by the server.
- ``publish`` is pipelined (``AckPipeline``): up to ``publish_window`` un-acknowledged messages
  in flight, acks counted on one inbox, and it returns only once every one is acknowledged (or
  raises ``BusUnavailable``; re-publishing the same batch is safe thanks to the message ids).
- A durable pull consumer per ``durable`` name is shared by every replica (work sharing). The
  server delivers a message ``max_deliver + 1`` times at most; we dead-letter it ourselves at
  ``max_deliver`` (on nak, on term, or when a crashed consumer let ``ack_wait`` lapse), publishing
  it to ``<prefix>_dead.<cluster_id>`` in the ``<stream>_DEAD`` stream, counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import ssl
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from aetherius.backoff import exponential
from aetherius.bus.base import BusUnavailable, Delivery, KeyValue, NoResponders
from aetherius.bus.pipeline import AckPipeline
from aetherius.config import MessageBusSettings
from aetherius.logs import get_logger
from aetherius.ops.metrics import (
    BUS_DEAD_LETTERED,
    BUS_DUPLICATES,
    BUS_REDELIVERIES,
    PUBLISH_FAILURES,
    PUBLISH_LATENCY,
)
from aetherius.signals import Signal, decode_signal, encode_signal

log = get_logger(__name__)

_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_NATS_ERRORS = (nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError)
# How long a pull that has its first Signal waits for the server to send the others it has. What
# arrives later stays in the subscription's queue and is taken by the next pull.
_MORE_WAIT = 0.005


def subject_token(value: str) -> str:
    """A value made safe as one subject token (no dots, wildcards or spaces)."""
    return _TOKEN_UNSAFE.sub("_", value) or "_"


class NatsDelivery:
    def __init__(self, bus: NatsBus, msg: Msg, signal: Signal, deliveries: int) -> None:
        self.signal = signal
        self.deliveries = deliveries
        self._bus = bus
        self._msg = msg

    async def ack(self) -> None:
        await self._settle(self._msg.ack())

    async def nak(self, *, delay: float | None = None) -> None:
        if self.deliveries >= self._bus.settings.max_deliver:
            await self._bus._dead_letter(self._msg, cause="max_deliver")
            return
        await self._settle(self._msg.nak(delay=delay))

    async def term(self) -> None:
        await self._bus._dead_letter(self._msg, cause="term")

    async def in_progress(self) -> None:
        await self._settle(self._msg.in_progress())

    async def _settle(self, operation: Any) -> None:
        try:
            await operation
        except _NATS_ERRORS as exc:
            # NB: an ack lost with the connection means a redelivery later, never a loss.
            raise BusUnavailable(f"cannot settle a delivery: {type(exc).__name__}: {exc}") from exc


class NatsKeyValue:
    """A KV bucket through the bus: the handle is looked up per operation, so a connection the
    bus had to open again (the server was gone longer than its reconnect attempts) is used, not
    the dead one the handle was made on."""

    def __init__(self, bus: NatsBus, bucket: str) -> None:
        self._bus = bus
        self.bucket = bucket

    async def get(self, key: str) -> bytes | None:
        try:
            entry = await (await self._bus._kv_handle(self.bucket)).get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"KV get {key}: {type(exc).__name__}: {exc}") from exc
        value = entry.value
        return bytes(value) if value is not None else None

    async def put(self, key: str, value: bytes) -> None:
        try:
            await (await self._bus._kv_handle(self.bucket)).put(key, value)
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"KV put {key}: {type(exc).__name__}: {exc}") from exc

    async def items(self, prefix: str, *, timeout: float = 5.0) -> dict[str, bytes]:
        """A watch of ``<prefix>.>`` read up to its end-of-initial-values marker, then stopped."""
        found: dict[str, bytes] = {}
        try:
            kv = await self._bus._kv_handle(self.bucket)
            watcher = await kv.watch(f"{prefix}.>", ignore_deletes=True)
            try:
                while (entry := await watcher.updates(timeout=timeout)) is not None:
                    if entry.value:
                        found[entry.key] = bytes(entry.value)
            finally:
                await watcher.stop()
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"KV watch {prefix}.>: {type(exc).__name__}: {exc}") from exc
        return found


class NatsIdentity(msgspec.Struct, frozen=True):
    """Who connects: an nkey seed (the server holds only its public key) and the inbox prefix
    its permissions allow (an edge agent may not subscribe to ``_INBOX.>``)."""

    seed: str
    inbox_prefix: str = "_INBOX"


class DirectKeyValue:
    """A KV bucket read and written without the JetStream API, for a user that may not use it.

    ``get`` is a direct get with the key in the request subject (so a permission can name the
    keys it may read); ``put`` is a publish to ``$KV.<bucket>.<key>`` acknowledged by the stream.
    The bucket must exist with ``allow_direct`` (central provisions it).
    """

    def __init__(self, bus: NatsBus, bucket: str, *, timeout: float) -> None:
        self._bus = bus
        self.bucket = bucket
        self.timeout = timeout

    async def get(self, key: str) -> bytes | None:
        subject = f"$JS.API.DIRECT.GET.KV_{self.bucket}.$KV.{self.bucket}.{key}"
        try:
            await self._bus._ensure()
            assert self._bus.nc is not None
            msg = await self._bus.nc.request(subject, b"", timeout=self.timeout)
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"KV get {key}: {type(exc).__name__}: {exc}") from exc
        headers = msg.headers or {}
        status = headers.get("Status", "")
        if status == "404":
            return None
        if status:
            raise BusUnavailable(f"KV get {key}: status {status} {headers.get('Description', '')}".strip())
        if headers.get("KV-Operation") in ("DEL", "PURGE"):
            return None
        return bytes(msg.data)

    async def put(self, key: str, value: bytes) -> None:
        try:
            js = await self._bus._ensure()
            await js.publish(f"$KV.{self.bucket}.{key}", value, timeout=self.timeout)
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"KV put {key}: {type(exc).__name__}: {exc}") from exc

    async def items(self, prefix: str) -> dict[str, bytes]:
        raise BusUnavailable("a direct KV handle cannot list keys (central reads them)")


class NatsBus:
    """Publish and consume Signals through one NATS connection (re-established when it dies).

    ``identity`` and ``provision=False`` are an edge agent's: it connects with its cluster's
    nkey, never touches the JetStream API (central created the streams and the bucket), and
    reconnects forever with capped, jittered backoff.
    """

    def __init__(
        self,
        settings: MessageBusSettings,
        *,
        name: str = "aetherius",
        identity: NatsIdentity | None = None,
        provision: bool = True,
        max_age: float = 0.0,
        msg_id_prefix: str = "",
    ) -> None:
        self.settings = settings
        self.name = name
        self.identity = identity
        self.provision = provision
        self.max_age = max_age  # seconds a stored Signal is kept at most; 0: no limit (central)
        # Before each ``Nats-Msg-Id``: a leaf member's ids never equal what it once sent directly.
        self.msg_id_prefix = msg_id_prefix
        self.stream = settings.stream
        self.prefix = settings.subject_prefix
        self.dead_stream = f"{settings.stream}_DEAD"
        self.dead_prefix = f"{settings.subject_prefix}_dead"
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._pipeline: AckPipeline | None = None
        self._subscriptions: dict[str, Any] = {}
        self._kv_handles: dict[str, Any] = {}
        self._last_error = ""
        self._connect_lock = asyncio.Lock()
        self._subjects: dict[tuple[str, str], str] = {}

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self) -> None:
        """Connect and make sure the streams exist; raises ``BusUnavailable``."""
        await self._ensure()

    async def _ensure(self) -> JetStreamContext:
        if self._js is not None and self._nc is not None and not self._nc.is_closed:
            return self._js
        async with self._connect_lock:
            if self._js is not None and self._nc is not None and not self._nc.is_closed:
                return self._js
            attempts = self.settings.max_reconnect_attempts
            try:
                # NB: nats-py retries a failing first connect forever; bound it so the caller
                # (readiness, the watcher's retry loop) hears about an unreachable server.
                self._nc = await asyncio.wait_for(
                    nats.connect(
                        self.settings.url,
                        name=self.name,
                        allow_reconnect=attempts != 0,
                        connect_timeout=2,
                        reconnect_time_wait=self.settings.reconnect_delay.total_seconds(),
                        max_reconnect_attempts=attempts,
                        error_cb=self._on_error,
                        disconnected_cb=self._on_disconnected,
                        reconnected_cb=self._on_reconnected,
                        reconnect_to_server_handler=self._next_server,
                        **self._identity_options(),
                    ),
                    timeout=self.settings.publish_timeout.total_seconds(),
                )
            except (*_NATS_ERRORS, nats.errors.NoServersError) as exc:
                # NB: a refused certificate or credential reaches only the error callback; the
                # connect itself just times out. Say what the server really answered.
                cause = f" (last error: {self._last_error})" if self._last_error else ""
                raise BusUnavailable(
                    f"cannot connect to {self.settings.url}: {type(exc).__name__}: {exc}{cause}"
                ) from exc
            self._js = self._nc.jetstream()
            self._pipeline = AckPipeline(self._nc, window=self.settings.publish_window)
            try:
                await self._pipeline.start()
            except _NATS_ERRORS as exc:
                raise BusUnavailable(f"cannot open the ack inbox: {type(exc).__name__}: {exc}") from exc
            self._subscriptions.clear()
            self._kv_handles.clear()
            if self.provision:
                await self._ensure_streams(self._js)
            log.info("bus connected", url=self.settings.url, stream=self.stream)
            return self._js

    async def _ensure_streams(self, js: JetStreamContext) -> None:
        duplicate_window = self.settings.duplicate_window.total_seconds()
        wanted = [
            (self.stream, f"{self.prefix}.>", self.settings.max_messages),
            (self.dead_stream, f"{self.dead_prefix}.>", -1),
        ]
        try:
            for name, subject, max_msgs in wanted:
                try:
                    await js.stream_info(name)
                except nats.js.errors.NotFoundError:
                    await js.add_stream(
                        name=name,
                        subjects=[subject],
                        duplicate_window=duplicate_window,
                        max_msgs=max_msgs,
                        max_age=self.max_age or None,
                        discard=api.DiscardPolicy.NEW,
                    )
                    log.info("bus stream created", stream=name, subjects=subject)
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"cannot create stream {self.stream}: {type(exc).__name__}: {exc}") from exc

    async def set_sources(self, stream: str, sources: list[api.StreamSource]) -> bool:
        """Make ``sources`` the sources of ``stream`` (central: its leaf members); ``True`` if changed.

        A source added resumes where its consumer stopped; one removed stops being read.
        """
        js = await self._ensure()
        try:
            config = (await js.stream_info(stream)).config
            current = [source.as_dict() for source in config.sources or []]
            if sorted(map(repr, current)) == sorted(repr(source.as_dict()) for source in sources):
                return False
            config.sources = sources or None
            await js.update_stream(config)
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"cannot set the sources of {stream}: {type(exc).__name__}: {exc}") from exc
        log.info("bus stream sources set", stream=stream, sources=[s.filter_subject for s in sources])
        return True

    def _identity_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        ca = self.settings.tls_ca_file
        if ca is not None or self.settings.url.startswith(("tls://", "wss://")):
            try:
                options["tls"] = ssl.create_default_context(cafile=str(ca) if ca else None)
            except (OSError, ssl.SSLError) as exc:
                raise BusUnavailable(f"message_bus.tls_ca_file: {exc}") from None
            options["tls_hostname"] = urlsplit(self.settings.url).hostname
        if self.identity is not None:
            options.update(nkeys_seed_str=self.identity.seed, inbox_prefix=self.identity.inbox_prefix)
        return options

    def _next_server(self, servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
        """Reconnect to the first server after a capped, jittered, growing delay.

        NB: a fleet of agents cut off together must not come back in one thundering second.
        """
        server = servers[0] if servers else None
        attempt = int(getattr(server, "reconnects", 0) or 0) + 1
        base = self.settings.reconnect_delay.total_seconds() or 1.0
        return server, exponential(attempt, base=base / 2, cap=base * 15, jitter=0.3)

    @property
    def nc(self) -> NatsClient | None:
        return self._nc

    async def request(
        self, subject: str, payload: bytes, *, timeout: float, reply_prefix: str | None = None
    ) -> bytes:
        """One request/reply; ``NoResponders`` when nobody listens, ``TimeoutError`` when late.

        ``reply_prefix``: the answer comes to ``<reply_prefix>.<random>``, not to the
        connection's shared inbox, so that a server may let one responder publish to its own
        prefix only (a leaf connection has no ``allow_responses``: see ``leaf_permissions``).
        """
        await self._ensure()
        assert self._nc is not None
        try:
            if reply_prefix is None:
                msg = await self._nc.request(subject, payload, timeout=timeout)
            else:
                msg = await self._request_to(
                    f"{reply_prefix}.{secrets.token_hex(16)}", subject, payload, timeout
                )
        except nats.errors.NoRespondersError:
            raise NoResponders(subject) from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise TimeoutError(subject) from None
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"request {subject}: {type(exc).__name__}: {exc}") from exc
        return bytes(msg.data)

    async def _request_to(self, inbox: str, subject: str, payload: bytes, timeout: float) -> Msg:
        """A request whose answer (or the server's no-responders status) comes to ``inbox``."""
        assert self._nc is not None
        subscription = await self._nc.subscribe(inbox, max_msgs=1)
        try:
            await self._nc.publish(subject, payload, reply=inbox)
            msg = await subscription.next_msg(timeout=timeout)
        finally:
            with contextlib.suppress(*_NATS_ERRORS):
                await subscription.unsubscribe()
        if msg.headers and msg.headers.get("Status") == "503" and not msg.data:
            raise nats.errors.NoRespondersError
        return msg

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("bus error", error=f"{type(exc).__name__}: {exc}")

    async def _on_disconnected(self) -> None:
        log.warning("bus disconnected", url=self.settings.url)

    async def _on_reconnected(self) -> None:
        log.info("bus reconnected", url=self.settings.url)

    def subject_for(self, signal: Signal) -> str:
        key = (signal.cluster_id, signal.source)
        subject = self._subjects.get(key)
        if subject is None:
            subject = f"{self.prefix}.{subject_token(signal.cluster_id)}.{subject_token(signal.source)}"
            if len(self._subjects) < 10_000:
                self._subjects[key] = subject
        return subject

    async def publish(self, signals: Sequence[Signal]) -> None:
        if not signals:
            return
        await self._ensure()
        pipeline = self._pipeline
        assert pipeline is not None
        started = time.perf_counter()
        subject_for, encode, prefix = self.subject_for, encode_signal, self.msg_id_prefix
        messages = [(subject_for(s), encode(s), prefix + s.msg_id) for s in signals]
        try:
            async with asyncio.timeout(self.settings.publish_timeout.total_seconds()):
                duplicates = await pipeline.publish(messages)
        except TimeoutError as exc:
            PUBLISH_FAILURES.inc()
            raise BusUnavailable(f"{len(messages)} publishes not all acknowledged in time") from exc
        except BusUnavailable:
            PUBLISH_FAILURES.inc()
            raise
        except _NATS_ERRORS as exc:
            PUBLISH_FAILURES.inc()
            raise BusUnavailable(f"publish failed: {type(exc).__name__}: {exc}") from exc
        if duplicates:
            BUS_DUPLICATES.inc(duplicates)
        PUBLISH_LATENCY.observe(time.perf_counter() - started)

    async def _subscription(self, durable: str) -> Any:
        # NB: first, so that a connection opened again drops the subscriptions of the dead one.
        js = await self._ensure()
        subscription = self._subscriptions.get(durable)
        if subscription is None:
            config = api.ConsumerConfig(
                durable_name=durable,
                ack_policy=api.AckPolicy.EXPLICIT,
                max_deliver=self.settings.max_deliver + 1,
                ack_wait=self.settings.ack_wait.total_seconds(),
                filter_subject=f"{self.prefix}.>",
            )
            try:
                subscription = await js.pull_subscribe(
                    f"{self.prefix}.>", durable=durable, stream=self.stream, config=config
                )
            except _NATS_ERRORS as exc:
                raise BusUnavailable(f"cannot open consumer {durable}: {type(exc).__name__}: {exc}") from exc
            self._subscriptions[durable] = subscription
        return subscription

    async def pull(self, *, durable: str, batch: int, timeout: float) -> list[Delivery]:
        """Wait up to ``timeout`` for the first Signal, then take what else is there at once.

        NB: one ``fetch(batch)`` would hold the Signals that came for up to ``timeout`` until
        ``batch`` of them were there: a quiet moment would delay every one by that much.
        """
        subscription = await self._subscription(durable)
        try:
            messages = await subscription.fetch(1, timeout=timeout)
            if batch > 1:
                with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                    messages += await subscription.fetch(batch - 1, timeout=_MORE_WAIT)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"pull {durable}: {type(exc).__name__}: {exc}") from exc
        out: list[Delivery] = []
        for msg in messages:
            deliveries = int(msg.metadata.num_delivered)
            if deliveries > self.settings.max_deliver:
                await self._dead_letter(msg, cause="ack_wait")
                continue
            try:
                signal = decode_signal(msg.data)
            except (msgspec.ValidationError, msgspec.DecodeError):
                await self._dead_letter(msg, cause="undecodable")
                continue
            if self._subject_cluster(msg.subject) != subject_token(signal.cluster_id):
                # NB: the subject is what the server let this publisher use (its identity);
                # a payload naming another cluster is a lie, whoever tells it.
                await self._dead_letter(msg, cause="cluster_mismatch")
                continue
            if deliveries > 1:
                BUS_REDELIVERIES.inc()
            out.append(NatsDelivery(self, msg, signal, deliveries))
        return out

    def _subject_cluster(self, subject: str) -> str:
        return subject[len(self.prefix) + 1 :].split(".", 1)[0]

    async def _dead_letter(self, msg: Msg, *, cause: str) -> None:
        js = await self._ensure()
        cluster = self._subject_cluster(msg.subject) or "_"
        headers = {"Aetherius-Dead-Cause": cause, "Aetherius-Subject": msg.subject}
        msg_id = (msg.headers or {}).get("Nats-Msg-Id")
        if msg_id:
            headers["Nats-Msg-Id"] = msg_id
        try:
            await js.publish(f"{self.dead_prefix}.{cluster}", msg.data, headers=headers)
            await msg.term()
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"dead-letter failed: {type(exc).__name__}: {exc}") from exc
        BUS_DEAD_LETTERED.labels(cause=cause).inc()
        log.warning("signal dead-lettered", cause=cause, subject=msg.subject, msg_id=msg_id)

    async def key_value(self, bucket: str) -> KeyValue:
        """The bucket (created by central if missing); raises ``BusUnavailable``."""
        await self._ensure()
        if not self.provision:
            return DirectKeyValue(self, bucket, timeout=self.settings.publish_timeout.total_seconds())
        await self._kv_handle(bucket)
        return NatsKeyValue(self, bucket)

    async def _kv_handle(self, bucket: str) -> Any:
        """nats-py's handle of ``bucket`` on the current connection."""
        js = await self._ensure()
        handle = self._kv_handles.get(bucket)
        if handle is not None:
            return handle
        try:
            try:
                handle = await js.key_value(bucket)
                await self._allow_direct(js, bucket)
            except nats.js.errors.BucketNotFoundError:
                # NB: allow_direct: an edge agent reads its own keys by direct get (no JS API).
                handle = await js.create_key_value(
                    config=api.KeyValueConfig(bucket=bucket, history=1, direct=True)
                )
        except _NATS_ERRORS as exc:
            raise BusUnavailable(f"KV bucket {bucket}: {type(exc).__name__}: {exc}") from exc
        self._kv_handles[bucket] = handle
        return handle

    async def _allow_direct(self, js: JetStreamContext, bucket: str) -> None:
        """A bucket made by an older version gains ``allow_direct``, which edge agents read by."""
        info = await js.stream_info(f"KV_{bucket}")
        if not info.config.allow_direct:
            config = info.config
            config.allow_direct = True
            await js.update_stream(config)
            log.info("KV bucket now allows direct get", bucket=bucket)

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            # NB: not drain(): publish already awaited every ack, and draining a pull
            # subscription waits out its timeout; un-acked deliveries simply come back.
            with contextlib.suppress(*_NATS_ERRORS):
                await asyncio.wait_for(self._nc.flush(timeout=2), timeout=3)
            await self._nc.close()
        self._nc = None
        self._js = None
        self._pipeline = None
