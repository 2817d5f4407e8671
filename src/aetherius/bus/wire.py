"""The one place that reaches under nats-py's public API: the hot path of ``AckPipeline``.

Per message, nats-py's ``publish`` validates the subject and the reply, encodes the header dict
(a regex per key), builds the frame with an f-string and two concatenations, appends it to its
pending buffer and checks its flush queue; per ack, it parses the headers, builds a ``Msg``,
queues it to the subscription's task, which awaits the callback. For the Watcher's stream of
Signals that was about a fifth of its CPU. Here:

- ``HpubWriter.write`` formats the ``HPUB`` frames of a whole run of messages (one ``%`` format
  each, the header bytes fixed but for the message id) and hands nats-py the run as one
  pending command, then asks its flusher to write, as ``publish`` does;
- ``route_acks`` hands the raw (subject, payload, headers) of every message of one subscription
  to a plain function, before nats-py builds a ``Msg``.

Private API used (nats-py 2.16): ``Client._send_command``, ``_flush_queue``, ``_flush_pending``,
``_pending_data_size``, ``_max_pending_size``, ``_process_msg`` and ``Subscription._id``.
``supported`` checks they are there; without them ``AckPipeline`` uses ``nc.publish`` and a
subscription callback (same behaviour, slower), and ``tests/bus/test_wire.py`` fails, so an
upgrade of nats-py cannot lose the fast path silently.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient

Message = tuple[str, bytes, str]  # subject, payload, Nats-Msg-Id
AckHandler = Callable[[bytes, bytes, bytes | None], None]  # subject, payload, raw headers

_HEADER_FIXED = len(b"NATS/1.0\r\nNats-Msg-Id: \r\n\r\n")
_PROCESS_MSG_PARAMS = ["sid", "subject", "reply", "data", "headers"]


def supported(nc: NatsClient) -> bool:
    """Whether this nats-py still has what the fast path needs (see the module docstring)."""
    try:
        process_msg = inspect.signature(type(nc)._process_msg)
    except (AttributeError, TypeError, ValueError):
        return False
    return (
        list(process_msg.parameters)[1:] == _PROCESS_MSG_PARAMS
        and callable(getattr(nc, "_send_command", None))
        and callable(getattr(nc, "_flush_pending", None))
        and all(hasattr(nc, name) for name in ("_flush_queue", "_pending_data_size", "_max_pending_size"))
    )


class HpubWriter:
    """Writes runs of ``HPUB`` frames (a reply subject and a ``Nats-Msg-Id`` header each)."""

    def __init__(self, nc: NatsClient) -> None:
        self._nc: Any = nc
        self._prefixes: dict[tuple[str, bytes], bytes] = {}

    def _prefix(self, subject: str, reply: bytes) -> bytes:
        prefix = self._prefixes.get((subject, reply))
        if prefix is None:
            if not subject or any(c in subject for c in " \t\r\n"):
                raise nats.errors.BadSubjectError
            if len(self._prefixes) > 1024:
                self._prefixes.clear()  # one entry per (subject, batch): keep only recent ones
            prefix = self._prefixes[(subject, reply)] = b"HPUB %b %b " % (subject.encode(), reply)
        return prefix

    async def write(self, messages: Sequence[Message], *, reply: bytes) -> None:
        """Queue the frames of ``messages`` in nats-py's pending buffer and have it flushed.

        Raises what ``nc.publish`` raises for a closed or draining connection, a payload over
        the server's limit, or an outbound buffer full while reconnecting.
        """
        nc = self._nc
        if nc.is_closed:
            raise nats.errors.ConnectionClosedError
        if nc.is_draining_pubs:
            raise nats.errors.ConnectionDrainingError
        max_payload, prefix_of = nc.max_payload, self._prefix
        parts: list[bytes] = []
        size = 0
        for subject, payload, msg_id in messages:
            if len(payload) > max_payload:
                raise nats.errors.MaxPayloadError
            mid = msg_id.encode()
            header = _HEADER_FIXED + len(mid)
            parts.append(
                b"%b%d %d\r\nNATS/1.0\r\nNats-Msg-Id: %b\r\n\r\n%b\r\n"
                % (prefix_of(subject, reply), header, header + len(payload), mid, payload)
            )
            size += len(payload)
        frames = b"".join(parts)
        if not nc.is_connected:
            pending_limit = nc._max_pending_size
            if pending_limit <= 0 or size + nc._pending_data_size > pending_limit:
                raise nats.errors.OutboundBufferLimitError
        nc.stats["out_msgs"] += len(messages)
        nc.stats["out_bytes"] += size
        await nc._send_command(frames)
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await nc._flush_pending()


def route_acks(nc: NatsClient, subscription: Any, handler: AckHandler) -> None:
    """Hand every message of ``subscription`` to ``handler`` instead of its callback."""
    sid = subscription._id
    client: Any = nc
    process_msg = client._process_msg

    async def _process_msg(
        sid_: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        if sid_ == sid:
            handler(subject, data, headers)
            return
        await process_msg(sid_, subject, reply, data, headers)

    client._process_msg = _process_msg
