"""The normalized Signal: one observation that something may be wrong.

Every source (Kubernetes Events, Pod status transitions, Alertmanager webhooks) is reduced to this
one shape before it reaches the bus, so the orchestrator has one thing to group and diagnose. It
is a msgspec Struct because it sits on the hot path: encoding and decoding it must cost less than
reading the watch stream that produced it.
"""

from __future__ import annotations

import hashlib

import msgspec

SignalSource = str  # "event" | "pod" | "alertmanager" | "webhook"


class ObjectRef(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    kind: str
    name: str
    namespace: str = ""
    uid: str = ""


class Signal(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    cluster_id: str
    source: str
    object: ObjectRef
    reason: str
    message: str
    severity: str  # info | warning | critical
    dedup_key: str
    occurrence: int = 1
    count: int = 1
    first_seen: str = ""  # RFC 3339, UTC
    last_seen: str = ""
    owner: ObjectRef | None = None
    container: str = ""
    resolved: bool = False
    resource_version: str = ""
    labels: dict[str, str] = {}

    @property
    def msg_id(self) -> str:
        """The bus message id: the same observation always gets the same id (JetStream dedup)."""
        return f"{self.dedup_key}:{self.occurrence}"


def dedup_key(*parts: str) -> str:
    """A short stable key for an observation, independent of process and restart."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12)
    return digest.hexdigest()


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Signal)


def encode_signal(signal: Signal) -> bytes:
    return _encoder.encode(signal)


def decode_signal(data: bytes) -> Signal:
    """Decode a Signal; raises ``msgspec.ValidationError``/``DecodeError`` on a bad payload."""
    return _decoder.decode(data)


SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
