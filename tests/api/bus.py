"""The bus the API tests publish to: the real in-process ``MemoryBus``."""

from __future__ import annotations

from aetherius.bus import MemoryBus as TestBus

__all__ = ["TestBus"]
