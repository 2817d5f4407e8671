"""The Signal bus: NATS JetStream in production, in-process for ``aetherius run`` and unit tests.

``open_bus(settings.message_bus)`` is the one way a role gets a bus; ``memory://`` (or
``memory://<name>``) yields the process-wide in-process bus of that name, so every role of one
``aetherius run`` process shares it.
"""

from __future__ import annotations

from aetherius.bus.base import BusUnavailable, Delivery, KeyValue, SignalBus, StatefulBus
from aetherius.bus.memory import MemoryBus
from aetherius.config import MessageBusSettings

__all__ = ["BusUnavailable", "Delivery", "KeyValue", "MemoryBus", "SignalBus", "StatefulBus", "open_bus"]

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
    from aetherius.bus.nats import NatsBus

    nats_bus = NatsBus(settings, name=name)
    await nats_bus.connect()
    return nats_bus
