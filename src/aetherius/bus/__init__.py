"""The Signal bus: NATS JetStream in production, in-process for ``aetherius run`` and unit tests.

``open_bus(settings.message_bus)`` is the one way a role gets a bus; ``memory://`` (or
``memory://<name>``) yields the process-wide in-process bus of that name, so every role of one
``aetherius run`` process shares it.
"""

from __future__ import annotations

import asyncio
import os

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
    "open_bus",
    "open_bus_waiting",
]

_MEMORY_BUSES: dict[str, MemoryBus] = {}


async def open_bus(settings: MessageBusSettings, *, name: str = "aetherius") -> StatefulBus:
    """Connect to the bus the settings name; raises ``BusUnavailable`` if NATS cannot be reached."""
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
    nats_bus = NatsBus(settings, name=name, identity=identity)
    await nats_bus.connect()
    return nats_bus


async def open_bus_waiting(settings: MessageBusSettings, *, name: str) -> StatefulBus:
    """``open_bus``, waiting (every ``reconnect_delay``) until the bus answers.

    NB: for roles that can do nothing without it (the watcher, the node agent): their readiness
    says "bus not connected" meanwhile, and they never exit for a bus that is not up yet.
    """
    delay = settings.reconnect_delay.total_seconds() or 1.0
    while True:
        try:
            return await open_bus(settings, name=name)
        except BusUnavailable as exc:
            log.warning("bus not reachable yet", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
