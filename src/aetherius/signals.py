"""The normalized Signal: one observation that something may be wrong.

Every source (Kubernetes Events, Pod status transitions, Alertmanager webhooks) is reduced to this
one shape before it reaches the bus, so the orchestrator has one thing to group and diagnose. It
is a msgspec Struct because it sits on the hot path: encoding and decoding it must cost less than
reading the watch stream that produced it.
"""

from __future__ import annotations

import hashlib

import msgspec

from aetherius.names import REJECTED_NAMES, name_problem, namespace_problem

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


# What the store can hold: BIGINT columns, and the lengths of the ``signals`` table's columns.
MAX_INT = 2**63 - 1
MAX_SIGNAL_BYTES = 256 * 1024  # well under NATS' default 1 MiB max_payload, headers included
_FIELD_LENGTHS = {
    "cluster_id": 253,
    "source": 32,
    "reason": 128,
    "severity": 16,
    "dedup_key": 128,
    "first_seen": 40,
    "last_seen": 40,
    "container": 253,
    "resource_version": 64,
}
_REF_LENGTHS = {"kind": 64, "name": 253, "namespace": 253, "uid": 64}


class UnstorableSignal(ValueError):
    """A Signal the store or the bus could never take; ``field`` names the culprit.

    NB: refused at the edge (a 4xx naming the field), never accepted and then dead-lettered: a
    sender told "202" believes the observation is safe.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text (PostgreSQL refuses NUL; UTF-8 has no lone surrogates)."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def _check_text(field: str, value: str, limit: int | None) -> None:
    problem = text_problem(value)
    if problem:
        raise UnstorableSignal(field, problem)
    if limit is not None and len(value) > limit:
        raise UnstorableSignal(field, f"is {len(value)} characters long; at most {limit}")


# Kinds a Signal may carry that are not Kubernetes objects: nothing is read for them.
NOT_OBJECTS = frozenset({"Alert"})


def check_storable(signal: Signal, *, entry: str) -> None:
    """Raise ``UnstorableSignal`` unless every field fits the store and the whole fits the bus,
    and every object it names could exist (``aetherius.names``; counted under ``entry``)."""
    for name, limit in _FIELD_LENGTHS.items():
        _check_text(name, getattr(signal, name), limit)
    _check_text("message", signal.message, None)
    for prefix, ref in (("object", signal.object), ("owner", signal.owner)):
        if ref is None:
            continue
        for name, limit in _REF_LENGTHS.items():
            _check_text(f"{prefix}.{name}", getattr(ref, name), limit)
        if ref.kind in NOT_OBJECTS:
            continue
        for field, problem in (
            (f"{prefix}.namespace", namespace_problem(ref.namespace)),
            (f"{prefix}.name", name_problem(ref.kind, ref.name)),
        ):
            if problem:
                REJECTED_NAMES.labels(entry=entry).inc()
                raise UnstorableSignal(field, problem)
    for key, value in signal.labels.items():
        _check_text("labels (a key)", key, None)
        _check_text(f"labels.{key}", value, None)
    for name in ("occurrence", "count"):
        number = getattr(signal, name)
        if not 0 <= number <= MAX_INT:
            raise UnstorableSignal(name, f"{number} is out of range 0..{MAX_INT}")
    size = len(encode_signal(signal))
    if size > MAX_SIGNAL_BYTES:
        raise UnstorableSignal("(whole signal)", f"is {size} bytes encoded; at most {MAX_SIGNAL_BYTES}")


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
