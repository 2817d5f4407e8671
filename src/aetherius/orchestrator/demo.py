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
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from aetherius.config import Settings
from aetherius.logs import get_logger
from aetherius.orchestrator.process import open_connections
from aetherius.orchestrator.run import Announce, run_roles
from aetherius.sim import SimCluster
from aetherius.store import IncidentFilters, Store

log = get_logger(__name__)

SettingsFor = Callable[[Path, Path], Settings]
"""``(kubeconfig, database file) -> Settings`` for the run against the sim."""


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def pipeline_idle(store: Store, *, previous: tuple[int, int] | None) -> tuple[bool, tuple[int, int]]:
    """Whether every incident has a report and nothing changed since ``previous``."""
    page = await store.list_incidents(IncidentFilters(), limit=500)
    signals = sum(i.signal_count for i in page.items)
    reported = all(i.report_version >= 1 for i in page.items)
    now = (len(page.items), signals)
    return bool(page.items) and reported and now == previous, now


async def _follow(
    sim: SimCluster,
    store: Store,
    stop: asyncio.Event,
    *,
    announce: Announce,
    exit_when_done: bool,
    settle: float,
) -> None:
    """Print each incident once diagnosed (and again when its root cause changes); maybe stop."""
    shown: dict[int, str] = {}
    previous: tuple[int, int] | None = None
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settle)
        page = await store.list_incidents(IncidentFilters(), limit=500)
        for incident in sorted(page.items, key=lambda i: i.id):
            if incident.report_version < 1 or shown.get(incident.id) == incident.root_cause:
                continue
            shown[incident.id] = incident.root_cause
            subject = f"{incident.owner_kind or incident.object_kind} {incident.namespace}/"
            subject += incident.owner_name or incident.object_name
            announce(
                f"Incident #{incident.id}: {incident.reason} in {subject} — root cause "
                f"{incident.root_cause or 'Unknown'} ({incident.severity})"
            )
        if exit_when_done and not sim.timeline.pending:
            idle, previous = await pipeline_idle(store, previous=previous)
            if idle:
                log.info("demo timeline played and every incident reported")
                stop.set()


async def run_demo(
    settings_for: SettingsFor,
    *,
    stop: asyncio.Event,
    announce: Announce,
    speed: float,
    exit_when_done: bool,
    settle: float = 1.0,
) -> None:
    with tempfile.TemporaryDirectory(prefix="aetherius-demo-") as tmp:
        directory = Path(tmp)
        async with SimCluster("demo", speed=speed) as sim:
            kubeconfig = sim.write_kubeconfig(directory / "kubeconfig")
            settings = settings_for(kubeconfig, directory / "aetherius.db")
            announce(f"Simulated cluster: {sim.url}  (kubectl --kubeconfig {kubeconfig} get pods -A)")
            async with open_connections(settings, role="demo") as conn:
                follow = asyncio.create_task(
                    _follow(
                        sim, conn.store, stop, announce=announce, exit_when_done=exit_when_done, settle=settle
                    )
                )
                try:
                    await run_roles(settings, conn, stop=stop, announce=announce)
                finally:
                    follow.cancel()
                    await asyncio.gather(follow, return_exceptions=True)
        announce("Demo stopped; its cluster and database are removed.")
