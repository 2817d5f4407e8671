from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aetherius.fleet.identity import EdgeCredential
from tests.hub import Hub


@dataclass
class Fleet:
    central: Hub
    a: EdgeCredential
    b: EdgeCredential


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    """A running central with member clusters ``a`` and ``b`` registered and everything provisioned."""
    central = Hub(tmp_path)
    a = central.registry.add("a")
    b = central.registry.add("b")
    assert a is not None and b is not None
    central.start()
    try:
        await central.provision()
        yield Fleet(central=central, a=a, b=b)
    finally:
        central.stop()
