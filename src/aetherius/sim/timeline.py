"""The timeline: scenario steps played forward on a virtual clock (placeholder, widened next)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aetherius.sim.cluster import SimCluster


class Timeline:
    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self.now = 0.0
        self.steps: list[dict[str, Any]] = []

    def extend(self, steps: list[dict[str, Any]]) -> None:
        self.steps.extend(steps)

    def advance(self, seconds: float) -> int:
        self.now += seconds
        return 0

    def run_to_end(self) -> int:
        return 0

    async def play(self, *, speed: float = 1.0) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.advance(speed)
