"""When ``aetherius demo --exit-when-done`` is done: every incident has a root cause, or it says why not.

``_follow`` over a real store and an empty sim (its timeline has nothing left to play): a
conclusive incident is printed once and the demo stops as done; one that stays Unknown is held
back, then printed and named in one line when the deadline passes, and the demo stops incomplete.
"""

from __future__ import annotations

import asyncio

from aetherius.compose.demo import _follow
from aetherius.sim import SimCluster
from aetherius.store import Store
from tests.orchestrator.factories import pod_signal
from tests.orchestrator.test_diagnose import store as store
from tests.orchestrator.test_followups import Scripted, build


async def _follow_until_stopped(store: Store, *, deadline: float) -> tuple[bool, list[str]]:
    printed: list[str] = []
    async with SimCluster() as sim:
        assert not sim.timeline.pending
        done = await asyncio.wait_for(
            _follow(
                sim,
                store,
                asyncio.Event(),
                announce=printed.append,
                exit_when_done=True,
                settle=0.05,
                deadline=deadline,
            ),
            timeout=30,
        )
    return done, printed


async def test_done_once_every_incident_has_a_root_cause(store: Store) -> None:
    orch = build(store, Scripted(("CrashLoopBackOff", "DependencyUnavailable", "critical")))
    await orch.handle(pod_signal(reason="CrashLoopBackOff", cluster="demo"))
    done, printed = await _follow_until_stopped(store, deadline=20)
    assert done
    assert printed == [
        "Incident #1: CrashLoopBackOff in Deployment shop/api — root cause DependencyUnavailable (critical)"
    ]


async def test_an_incident_left_unknown_is_named_when_the_deadline_passes(store: Store) -> None:
    orch = build(store, Scripted(("", "Unknown", "")))
    await orch.handle(pod_signal(reason="CrashLoopBackOff", cluster="demo"))
    done, printed = await _follow_until_stopped(store, deadline=0.5)
    assert not done
    assert printed == [
        "Incident #1: CrashLoopBackOff in Deployment shop/api — root cause Unknown (warning)",
        "Demo incomplete: 0.5s after the timeline ended, no root cause for #1 Deployment shop/api.",
    ]
