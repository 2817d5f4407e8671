"""A pipelined JetStream publisher: a bounded window of un-acknowledged messages, one ack inbox.

nats-py's ``js.publish`` awaits each ack through a per-message inbox future, and
``js.publish_async`` still pays per message for a random token (``os.urandom``), a future with a
done callback, a semaphore acquire and the JSON parse of a ``PubAck``; worse, once its window is
full every single ack reopens room for one message, so the socket is written one message at a
time. Here every message of a batch carries the same reply subject on one wildcard inbox
subscription; an ack is a dict lookup and a counter, and a full window waits until half of it is
acknowledged, so writes go out in runs of ``window / 2`` messages.

The promises are those of ``SignalBus.publish``: ``publish`` returns only once every message of
the batch was acknowledged by the stream, and raises ``BusUnavailable`` on a rejection, on no
responders (no stream for the subject) or on the deadline; the caller re-publishes the batch
under a fresh reply subject, and ``Nats-Msg-Id`` makes that idempotent. Acks of an abandoned
batch arrive at a subject nobody waits on any more and are ignored.

Frames are written a run at a time and acks counted from the raw protocol message
(``bus/wire.py``, the one module using nats-py's private API) when this nats-py allows it;
otherwise through ``nc.publish`` and a subscription callback, with the same behaviour.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from aetherius.bus import wire
from aetherius.bus.base import BusUnavailable
from aetherius.bus.wire import Message


class _Batch:
    __slots__ = ("acked", "done", "duplicates", "error", "expected", "sent")

    def __init__(self, expected: int, done: asyncio.Future[None]) -> None:
        self.expected = expected
        self.sent = 0
        self.acked = 0
        self.duplicates = 0
        self.error = ""
        self.done = done


class AckPipeline:
    """Publish batches on ``nc`` with at most ``window`` messages un-acknowledged (all batches)."""

    def __init__(self, nc: NatsClient, *, window: int) -> None:
        self._nc = nc
        self.window = max(1, window)
        self._resume_at = self.window // 2  # hysteresis: resume writing once half is acked
        self._prefix = ""
        self._ids = itertools.count(1)
        self._batches: dict[bytes, _Batch] = {}
        self._in_flight = 0
        self._room = asyncio.Event()
        self._waiting = 0
        self._subscription: Any = None
        self._writer: wire.HpubWriter | None = None

    @property
    def fast(self) -> bool:
        """Frames and acks go through ``bus/wire.py`` (not ``nc.publish`` and a callback)."""
        return self._writer is not None

    async def start(self) -> None:
        self._prefix = f"{self._nc.new_inbox()}."
        self._subscription = await self._nc.subscribe(f"{self._prefix}*", cb=self._on_ack_msg)
        if wire.supported(self._nc):
            wire.route_acks(self._nc, self._subscription, self._on_ack)
            self._writer = wire.HpubWriter(self._nc)

    async def _on_ack_msg(self, msg: Msg) -> None:
        status = (msg.headers or {}).get("Status", "") if not msg.data else ""
        self._on_ack(msg.subject.encode(), msg.data, status.encode())

    def _on_ack(self, subject: bytes, data: bytes, headers: bytes | None) -> None:
        batch = self._batches.get(subject)
        if batch is None:
            return  # an abandoned batch's late ack: its window share was already returned
        if not data or b'"error"' in data:
            if not batch.error:
                batch.error = data.decode(errors="replace") if data else f"no responders ({_status(headers)})"
            if not batch.done.done():
                batch.done.set_result(None)
            self._room.set()  # a publisher waiting for room must hear of its batch's error
            return
        self._in_flight -= 1
        batch.acked += 1
        if b'"duplicate"' in data:  # NB: the server writes ``"duplicate": true``, only when true
            batch.duplicates += 1
        if batch.acked >= batch.expected and not batch.done.done():
            batch.done.set_result(None)
        if self._waiting and self._in_flight <= self._resume_at:
            self._room.set()

    async def _wait_for_room(self) -> None:
        self._room.clear()
        self._waiting += 1
        try:
            await self._room.wait()
        finally:
            self._waiting -= 1

    async def publish(self, messages: Sequence[Message]) -> int:
        """Publish ``messages`` and return once all are acknowledged; the number of duplicates.

        The caller bounds the time (``asyncio.timeout``); on a timeout or an error the batch is
        abandoned and its un-acknowledged share of the window is given back.
        """
        if not messages:
            return 0
        reply = f"{self._prefix}{next(self._ids)}"
        key = reply.encode()
        batch = _Batch(len(messages), asyncio.get_running_loop().create_future())
        self._batches[key] = batch
        window, writer, start = self.window, self._writer, 0
        try:
            while start < len(messages):
                while self._in_flight >= window and not batch.error:
                    await self._wait_for_room()
                if batch.error:
                    break
                run = messages[start : start + window - self._in_flight]
                start += len(run)
                self._in_flight += len(run)
                batch.sent += len(run)
                if writer is not None:
                    await writer.write(run, reply=key)
                else:
                    for subject, payload, msg_id in run:
                        await self._nc.publish(subject, payload, reply=reply, headers={"Nats-Msg-Id": msg_id})
            if not batch.error:
                await batch.done
        finally:
            del self._batches[key]
            self._in_flight -= batch.sent - batch.acked
            if self._waiting and self._in_flight <= self._resume_at:
                self._room.set()
        if batch.error:
            raise BusUnavailable(f"publish rejected: {batch.error[:300]}")
        return batch.duplicates


def _status(headers: bytes | None) -> str:
    """``status 503`` from a status header block (``NATS/1.0 503``), or ``status unknown``."""
    if headers and headers.startswith(b"NATS/1.0 "):
        return f"status {headers[9:12].decode(errors='replace')}"
    if headers and headers.isdigit():
        return f"status {headers.decode()}"
    return "status unknown"
