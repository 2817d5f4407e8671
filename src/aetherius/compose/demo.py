"""``aetherius demo``: a simulated cluster breaking in six real ways, and Aetherius watching it.

Starts the demo ``SimCluster`` in process (an API server on 127.0.0.1 that the real client talks
to over HTTP), writes its kubeconfig to a temporary directory and runs ``aetherius run`` against
it on a fresh SQLite file there: incidents appear on the dashboard as the timeline plays (an OOM
crash loop, a missing image, an unschedulable pod, a missing ConfigMap, a failing readiness probe,
a dependency refusing connections). Nothing external is needed; everything is removed on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aetherius.compose.run import Announce, run_roles
from aetherius.config import Settings
from aetherius.logs import get_logger
from aetherius.orchestrator.process import open_connections
from aetherius.sim import SimCluster
from aetherius.store import Incident, IncidentFilters, Store

log = get_logger(__name__)

SettingsFor = Callable[[Path, Path], Settings]
"""``(kubeconfig, database file) -> Settings`` for the run against the sim."""


DONE_DEADLINE = 60.0
PROGRESS_EVERY = 15.0  # seconds between "still playing" lines, so a newcomer knows it works
"""Seconds an incident may stay without a root cause before the demo says so (and, with
``--exit-when-done``, how long after the timeline's end it waits for one)."""


@dataclass
class _Shown:
    """What ``_follow`` has printed, and since when each incident has been inconclusive."""

    causes: dict[int, str] = field(default_factory=dict)
    unknown_since: dict[int, float] = field(default_factory=dict)


def _subject(incident: Incident) -> str:
    return f"{incident.owner_kind or incident.object_kind} {incident.namespace}/" + (
        incident.owner_name or incident.object_name
    )


def _announce_new(
    items: list[Incident], shown: _Shown, *, announce: Announce, now: float, patience: float
) -> None:
    """Print each incident once its root cause is known (again when it changes).

    NB: a report that came too early is Unknown and is usually followed within seconds by the
    real one (the next crash re-diagnoses it): it is printed only after ``patience``, so the
    person sees each failure once, with its cause.
    """
    for incident in sorted(items, key=lambda i: i.id):
        if incident.report_version < 1 or shown.causes.get(incident.id) == incident.root_cause:
            continue
        if incident.root_cause in ("", "Unknown"):
            since = shown.unknown_since.setdefault(incident.id, now)
            if now - since < patience:
                continue
        shown.causes[incident.id] = incident.root_cause
        announce(
            f"Incident #{incident.id}: {incident.reason} in {_subject(incident)} — root cause "
            f"{incident.root_cause or 'Unknown'} ({incident.severity})"
        )


def _waiting(items: list[Incident]) -> list[Incident]:
    """Incidents with no report yet, or whose report found no root cause."""
    return [i for i in items if i.report_version < 1 or i.root_cause in ("", "Unknown")]


async def _follow(
    sim: SimCluster,
    store: Store,
    stop: asyncio.Event,
    *,
    announce: Announce,
    exit_when_done: bool,
    settle: float,
    deadline: float,
) -> bool:
    """Print the incidents as they are diagnosed; with ``exit_when_done``, stop once done.

    Done: the timeline has played, every incident has a report with a root cause, and nothing
    changed for one ``settle`` period. Returns False when ``deadline`` seconds after the
    timeline's end some incident still has none (said in one line, then the demo stops).
    """
    loop = asyncio.get_running_loop()
    shown = _Shown()
    previous: tuple[int, int] | None = None
    played_at: float | None = None
    total = max(sim.timeline.end, 1.0)
    progress_at = loop.time() + PROGRESS_EVERY
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settle)
        items = list((await store.list_incidents(IncidentFilters(), limit=500)).items)
        now = loop.time()
        if now >= progress_at and sim.timeline.pending:
            progress_at = now + PROGRESS_EVERY
            played = min(99, int(100 * sim.timeline.now / total))
            announce(f"… {played}% of the demo timeline played, {len(items)} incident(s) so far")
        if exit_when_done and played_at is None and not sim.timeline.pending:
            played_at = now
        late = played_at is not None and now - played_at >= deadline
        _announce_new(items, shown, announce=announce, now=now, patience=0.0 if late else deadline)
        if played_at is None:
            continue
        waiting = _waiting(items)
        state = (len(items), sum(i.signal_count for i in items))
        if items and not waiting and state == previous:
            log.info("demo timeline played and every incident diagnosed")
            stop.set()
        elif late:
            names = ", ".join(f"#{i.id} {_subject(i)}" for i in waiting) or "no incident was opened"
            announce(f"Demo incomplete: {deadline:g}s after the timeline ended, no root cause for {names}.")
            stop.set()
            return False
        previous = state
    return True


async def run_demo(
    settings_for: SettingsFor,
    *,
    stop: asyncio.Event,
    announce: Announce,
    speed: float,
    exit_when_done: bool,
    settle: float = 1.0,
    deadline: float = DONE_DEADLINE,
) -> bool:
    """Play the demo until ``stop`` (or, with ``exit_when_done``, until done); False: incomplete."""
    with tempfile.TemporaryDirectory(prefix="aetherius-demo-") as tmp:
        directory = Path(tmp)
        async with SimCluster("demo", speed=speed) as sim:
            kubeconfig = sim.write_kubeconfig(directory / "kubeconfig")
            settings = settings_for(kubeconfig, directory / "aetherius.db")
            announce(f"Simulated cluster: {sim.url}  (kubectl --kubeconfig {kubeconfig} get pods -A)")
            seconds = sim.timeline.end / speed
            announce(
                f"Six failures play out over about {seconds:.0f}s; each incident is printed below once "
                "its root cause is known"
                + (", then the demo exits." if exit_when_done else " (Ctrl-C stops).")
            )
            async with open_connections(settings, role="demo") as conn:
                follow = asyncio.create_task(
                    _follow(
                        sim,
                        conn.store,
                        stop,
                        announce=announce,
                        exit_when_done=exit_when_done,
                        settle=settle,
                        deadline=deadline,
                    )
                )
                try:
                    await run_roles(settings, conn, stop=stop, announce=announce)
                finally:
                    follow.cancel()
                    results = await asyncio.gather(follow, return_exceptions=True)
        announce("Demo stopped; its cluster and database are removed.")
    return results[0] is not False
