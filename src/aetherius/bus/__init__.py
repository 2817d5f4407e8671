"""The Signal bus: NATS JetStream in production, in-process for ``aetherius run`` and unit tests.

``open_bus(settings.message_bus)`` is the one way a role gets a bus (``bus_for`` and
``connect_waiting`` when it must serve its probes while the bus is not up yet); ``memory://`` (or
``memory://<name>``) yields the process-wide in-process bus of that name, so every role of one
``aetherius run`` process shares it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from aetherius.backoff import exponential
from aetherius.bus.base import BusUnavailable, Delivery, KeyValue, SignalBus, StatefulBus
from aetherius.bus.memory import MemoryBus
from aetherius.config import MessageBusSettings
from aetherius.logs import get_logger

log = get_logger(__name__)

__all__ = [
    "BusUnavailable",
    "Delivery",
    "KeyValue",
    "MemoryBus",
    "SignalBus",
    "StatefulBus",
    "bus_for",
    "connect_waiting",
    "open_bus",
]

_MEMORY_BUSES: dict[str, MemoryBus] = {}


def bus_for(settings: MessageBusSettings, *, name: str = "aetherius") -> StatefulBus:
    """The bus the settings name, not connected yet (``connect_waiting`` or ``open_bus`` connect it).

    Central's own identity is read here, the one place: the nkey seed from the variable
    ``message_bus.nkey_seed_env`` names, else ``message_bus.nkey_seed_file``; neither, no key.
    """
    if settings.url.startswith("memory://"):
        bus = _MEMORY_BUSES.get(settings.url)
        if bus is None or not bus.connected:
            bus = MemoryBus(
                max_messages=settings.max_messages,
                duplicate_window=settings.duplicate_window.total_seconds(),
                max_deliver=settings.max_deliver,
                ack_wait=settings.ack_wait.total_seconds(),
            )
            _MEMORY_BUSES[settings.url] = bus
        return bus
    from aetherius.bus.nats import NatsBus, NatsIdentity

    identity = None
    seed = os.environ.get(settings.nkey_seed_env, "").strip() if settings.nkey_seed_env else ""
    if not seed and settings.nkey_seed_file is not None:
        try:
            seed = settings.nkey_seed_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BusUnavailable(f"message_bus.nkey_seed_file: cannot read it: {exc.strerror}") from None
    if seed:
        identity = NatsIdentity(seed=seed)
    return NatsBus(settings, name=name, identity=identity)


async def open_bus(settings: MessageBusSettings, *, name: str = "aetherius") -> StatefulBus:
    """Connect to the bus the settings name; raises ``BusUnavailable`` if NATS cannot be reached."""
    bus = bus_for(settings, name=name)
    await _connect(bus)
    return bus


async def _connect(bus: StatefulBus) -> None:
    from aetherius.bus.nats import NatsBus

    if isinstance(bus, NatsBus):
        await bus.connect()


async def connect_waiting(bus: StatefulBus, *, stop: asyncio.Event) -> bool:
    """Connect ``bus``, trying again after a growing, capped, jittered delay until it answers
    or ``stop`` is set; False when stopped first.

    NB: for roles that can do nothing without it (the watcher, the node agent, the edge agent):
    they serve their probes meanwhile (readiness says the bus is not connected) and never exit
    for a bus that is not up yet.
    """
    from aetherius.bus.nats import NatsBus

    delay = (bus.settings.reconnect_delay.total_seconds() if isinstance(bus, NatsBus) else 0) or 1.0
    attempt = 0
    while not stop.is_set():
        try:
            await _connect(bus)
            return True
        except BusUnavailable as exc:
            attempt += 1
            wait = exponential(attempt, base=delay, cap=delay * 15, jitter=0.2)
            log.warning("bus not reachable yet", error=str(exc), retry_in=round(wait, 1))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
    return False
