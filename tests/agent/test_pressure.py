"""Pressure trends → the right Signal with its figures: memory, disk, inodes, PIDs.

The tracker is fed the simulated kubelet's summaries along a timeline (no clock in the test: the
samples carry their own times), as the agent's poll does every 10 s.
"""

from __future__ import annotations

import re

import msgspec
import pytest

from aetherius.agent.kubelet import Summary
from aetherius.agent.pressure import PressureTracker, threshold_bytes
from aetherius.config import NodeAgentSettings
from aetherius.sim.node_stats import Falling, GiB, MiB, SimNode, SimPod

_decode = msgspec.json.Decoder(Summary)


def _summary(node: SimNode, minutes: float) -> Summary:
    return _decode.decode(msgspec.json.encode(node.summary(minutes)))


def _run(node: SimNode, minutes: list[float]) -> list[tuple[float, object]]:
    tracker = PressureTracker(NodeAgentSettings())
    out = []
    for minute in minutes:
        for event in tracker.observe(_summary(node, minute), at=minute * 60):
            out.append((minute, event))
    return out


def test_memory_falling_towards_eviction_is_said_before_it_gets_there() -> None:
    node = SimNode(
        name="node-1",
        memory_available=Falling(start=1200 * MiB, per_minute=25 * MiB),
        pods=[
            SimPod("shop", "cache-7d9f8-x2k4q", "u1", working_set=int(1.9 * GiB)),
            SimPod("shop", "api-1", "u2", working_set=300 * MiB),
        ],
    )
    events = _run(node, [m / 6 for m in range(0, 6 * 50)])  # every 10 s for 50 min
    memory = [(m, e) for m, e in events if e.signal == "memory.available"]  # type: ignore[attr-defined]
    levels = [e.level for _, e in memory]  # type: ignore[attr-defined]
    assert levels == ["warning", "critical"], levels
    minute, warning = memory[0]
    # 1200Mi falling 25Mi/min reaches 100Mi at minute 44; the 15 min horizon warns near minute 29.
    assert 25 <= minute <= 32, minute
    text = warning.message()  # type: ignore[attr-defined]
    assert (
        "memory.available" in text and "falling 25Mi/min" in text and "eviction threshold 100Mi in ~" in text
    )
    assert "top: shop/cache-7d9f8-x2k4q 1.9Gi" in text
    critical_minute, critical = memory[1]
    assert critical_minute >= 44 and "the kubelet evicts pods now" in critical.message()  # type: ignore[attr-defined]


def test_a_steady_node_says_nothing_and_a_recovery_is_said_once() -> None:
    steady = SimNode(name="node-1")
    assert _run(steady, [m / 6 for m in range(60)]) == []
    node = SimNode(name="node-1", fs_available=Falling(start=15 * GiB, per_minute=0))  # 15% of 100Gi left
    tracker = PressureTracker(NodeAgentSettings())
    first = tracker.observe(_summary(node, 0), at=0)
    assert [(e.signal, e.level) for e in first] == [("nodefs.available", "warning")]
    assert tracker.observe(_summary(node, 1), at=60) == []  # still warning: not said again
    node.fs_available = Falling(start=50 * GiB)
    back = tracker.observe(_summary(node, 2), at=120)
    assert [(e.signal, e.level, e.previous) for e in back] == [("nodefs.available", "ok", "warning")]


@pytest.mark.parametrize(
    ("signal", "node"),
    [
        ("nodefs.inodesFree", SimNode(name="n", inodes_free=Falling(start=2_000_000, per_minute=60_000))),
        (
            "imagefs.available",
            SimNode(name="n", imagefs_available=Falling(start=60 * GiB, per_minute=3 * GiB)),
        ),
        (
            "pid.available",
            SimNode(name="n", max_pid=100_000, processes=Falling(start=60_000, per_minute=-1_500)),
        ),
    ],
)
def test_disk_inodes_and_pids_trend_too(signal: str, node: SimNode) -> None:
    """Each is warned of by its trend first (still above twice its threshold), with the rate."""
    events = [e for _, e in _run(node, [m / 6 for m in range(0, 6 * 40)]) if e.signal == signal]  # type: ignore[attr-defined]
    assert [e.level for e in events][:1] == ["warning"], events  # type: ignore[attr-defined]
    first = events[0]
    assert first.available > 2 * first.threshold and first.minutes_left is not None  # type: ignore[attr-defined]
    assert re.search(r"falling [0-9,.]+(Gi|Mi)?/min: eviction threshold \S+ in ~\d+ min", first.message()), (
        first.message()
    )  # type: ignore[attr-defined]


def test_thresholds_as_the_kubelet_writes_them() -> None:
    assert threshold_bytes("100Mi", None) == 100 * MiB
    assert threshold_bytes("10%", 200.0) == 20.0
    assert threshold_bytes("10%", None) is None
    assert threshold_bytes("banana", 1.0) is None
