"""The gateway's read operations as messages between central and an edge agent.

A request names one read of ``Backend`` (list, get, logs) or ``ping``; the reply carries what the
agent read, already redacted and scrubbed there, and the bytes it read from its API server (the
audit's figure). A reply never exceeds the NATS max payload: a large list comes back in pages
(``page``/``pages``), the rest held by the agent for a short while under ``cursor``.

msgpack, not JSON: object documents are most of a reply, and msgpack is a third smaller and
faster to encode on a small agent.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

PROTOCOL = 1
Operation = Literal["ping", "list", "get", "logs", "page"]


class GatewayRequest(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    op: Operation
    requester: str = ""  # the diagnosis that asked (audited on both sides)
    kind: str = ""
    namespace: str | None = None
    name: str = ""
    label_selector: str | None = None
    field_selector: str | None = None
    analysis: bool = False
    container: str = ""
    previous: bool = False
    tail_lines: int = 200
    max_bytes: int = 64 * 1024
    cursor: str = ""  # op=page: which held list
    page: int = 0


class GatewayReply(msgspec.Struct, frozen=True, omit_defaults=True):
    cluster: str
    protocol: int = PROTOCOL
    error: str = ""  # the read failed: the message becomes the central BackendError
    items: list[dict[str, Any]] = []
    obj: dict[str, Any] | None = None
    found: bool = True
    text: str | None = None
    bytes: int = 0
    cursor: str = ""
    page: int = 0
    pages: int = 1
    version: str = ""  # op=ping: the agent's version
    secret_metadata: bool = False  # op=ping: whether the agent lists Secrets (metadata only)


_request_decoder = msgspec.msgpack.Decoder(GatewayRequest)
_reply_decoder = msgspec.msgpack.Decoder(GatewayReply)
_encoder = msgspec.msgpack.Encoder()


def encode(message: GatewayRequest | GatewayReply) -> bytes:
    return _encoder.encode(message)


def decode_request(data: bytes) -> GatewayRequest:
    return _request_decoder.decode(data)


def decode_reply(data: bytes) -> GatewayReply:
    return _reply_decoder.decode(data)
