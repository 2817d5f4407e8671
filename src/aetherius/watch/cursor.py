"""What the Watcher has durably published: resourceVersion cursors and the dedup window.

Both only ever hold acknowledged state — the publisher updates them after the bus acked — and
both are saved to the bus's KV bucket, so a restarted Watcher resumes each watch where the last
acknowledged event was (no loss) and skips occurrences it already published when it must
relist (no replay flood). What was published after the last save is re-published once more on a
restart and dropped by the bus's ``Nats-Msg-Id`` dedup.

The dedup window is saved as one msgpack map cut into chunks (a KV value is at most the server's max payload, 1 MiB by
default) under one of two alternating generations; the ``dedup`` key, written last, names the
complete generation, so a crash mid-save leaves the previous snapshot intact.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Iterable

import msgspec

from aetherius.bus.base import KeyValue
from aetherius.logs import get_logger
from aetherius.ops.metrics import SIGNALS_DEDUPLICATED
from aetherius.signals import Signal

log = get_logger(__name__)

CHUNK_BYTES = 512 * 1024  # a KV value is at most the max payload (1 MiB by default)
_encoder = msgspec.msgpack.Encoder()


class _Meta(msgspec.Struct):
    generation: str
    chunks: int
    entries: int


class Acked(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One window entry; encoded as ``[occurrence, stamp]``, like the tuple it replaced (no cycles:
    untracked by the GC, and smaller than a tuple)."""

    occurrence: int
    stamp: float


class DedupWindow:
    """dedup key → highest acknowledged occurrence, for ``window`` seconds, at most ``max_entries``."""

    def __init__(self, *, window: float, max_entries: int) -> None:
        self.window = window
        self.max_entries = max_entries
        self._acked: OrderedDict[str, Acked] = OrderedDict()
        self._pending: dict[str, int] = {}  # handed to the bus, not yet acknowledged
        self.changed = False

    def __len__(self) -> int:
        return len(self._acked)

    def fresh(self, signals: Iterable[Signal]) -> list[Signal]:
        """The signals not yet published nor being published (an occurrence at or below a known
        one is not news); the caller must ``record`` them once the bus acknowledged them."""
        acked, pending = self._acked, self._pending
        out: list[Signal] = []
        for signal in signals:
            key, occurrence = signal.dedup_key, signal.occurrence
            known = acked.get(key)
            if (known is not None and known.occurrence >= occurrence) or pending.get(key, 0) >= occurrence:
                SIGNALS_DEDUPLICATED.labels(where="watcher").inc()
                continue
            pending[key] = occurrence
            out.append(signal)
        return out

    def record(self, signals: Iterable[Signal], *, now: float | None = None) -> None:
        stamp = time.time() if now is None else now
        acked, pending = self._acked, self._pending
        for signal in signals:
            key, occurrence = signal.dedup_key, signal.occurrence
            higher = pending.pop(key, 0)
            if higher > occurrence:
                pending[key] = higher  # a later occurrence is still being published
            known = acked.pop(key, None)
            if known is not None and known.occurrence > occurrence:
                occurrence = known.occurrence
            acked[key] = Acked(occurrence, stamp)
        self.changed = True
        self.expire(now=stamp)

    def expire(self, *, now: float | None = None) -> None:
        horizon = (time.time() if now is None else now) - self.window
        acked = self._acked
        while acked:
            key, entry = next(iter(acked.items()))
            if entry.stamp >= horizon and len(acked) <= self.max_entries:
                return
            del acked[key]

    def entries(self) -> list[tuple[str, int, float]]:
        return [(key, entry.occurrence, entry.stamp) for key, entry in self._acked.items()]

    def encoded(self) -> bytes:
        """The window as one msgpack map ``key → [occurrence, stamp]``, oldest first."""
        return _encoder.encode(self._acked)

    def load(self, entries: Iterable[tuple[str, int, float]]) -> None:
        for key, occurrence, stamp in sorted(entries, key=lambda e: e[2]):
            self._acked[key] = Acked(occurrence, stamp)
        self.expire()
        self.changed = False


def kv_token(value: str) -> str:
    """``value`` as one token of a KV key (NATS allows ``[-/_=.a-zA-Z0-9]``; the dot separates)."""
    return re.sub(r"[^-/_=a-zA-Z0-9]", "_", value)


class CursorStore:
    """The Watcher's durable state in one KV bucket: ``cursor.<resource>.<ns>`` and ``dedup``."""

    def __init__(self, kv: KeyValue, *, prefix: str) -> None:
        self.kv = kv
        self.prefix = kv_token(prefix)  # one Watcher per cluster: its id
        self._saved_cursors: dict[str, str] = {}
        self._generation = "a"

    def _key(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    async def load_cursor(self, name: str) -> str | None:
        value = await self.kv.get(self._key(f"cursor.{name}"))
        if not value:
            return None
        rv = value.decode()
        self._saved_cursors[name] = rv
        return rv

    async def save_cursors(self, cursors: dict[str, str]) -> None:
        for name, rv in cursors.items():
            if rv and self._saved_cursors.get(name) != rv:
                await self.kv.put(self._key(f"cursor.{name}"), rv.encode())
                self._saved_cursors[name] = rv

    async def load_dedup(self, window: DedupWindow) -> None:
        raw = await self.kv.get(self._key("dedup"))
        if not raw:
            return
        try:
            meta = msgspec.msgpack.decode(raw, type=_Meta)
            blob = bytearray()
            for index in range(meta.chunks):
                chunk = await self.kv.get(self._key(f"dedup.{meta.generation}.{index}"))
                if chunk is None:
                    raise ValueError(f"chunk {index} missing")
                blob += chunk
            entries = msgspec.msgpack.decode(blob, type=dict[str, tuple[int, float]]) if blob else {}
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            # NB: losing the window costs only re-publishes, which the bus dedups: start empty.
            log.warning("dedup window unreadable, starting empty", error=str(exc))
            return
        window.load((key, occurrence, stamp) for key, (occurrence, stamp) in entries.items())
        self._generation = "b" if meta.generation == "a" else "a"
        log.info("dedup window restored", entries=len(window))

    async def save_dedup(self, window: DedupWindow) -> None:
        """One msgpack map of the whole window, encoded in C in one call and cut into KV-sized
        chunks (no per-entry Python work: this runs every checkpoint while the watch streams)."""
        if not window.changed:
            return
        window.changed = False
        blob = window.encoded()
        generation = self._generation
        chunks = 0
        try:
            for start in range(0, len(blob), CHUNK_BYTES):
                await self.kv.put(
                    self._key(f"dedup.{generation}.{chunks}"), blob[start : start + CHUNK_BYTES]
                )
                chunks += 1
            meta = _Meta(generation=generation, chunks=chunks, entries=len(window))
            await self.kv.put(self._key("dedup"), _encoder.encode(meta))
        except BaseException:
            window.changed = True  # try again at the next checkpoint
            raise
        self._generation = "b" if generation == "a" else "a"
