"""``aetherius sim``: serve a simulated cluster on 127.0.0.1 and play its timeline."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from aetherius.cli.common import fail


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
    app.command(name="sim")(sim)


def sim(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    scenario: Annotated[
        str | None, typer.Option("--scenario", help="A built-in scenario name (demo) or a scenario file.")
    ] = "demo",
    kubeconfig_out: Annotated[
        Path | None, typer.Option("--kubeconfig-out", help="Write a kubeconfig for the sim here.")
    ] = None,
    history: Annotated[int, typer.Option("--history", help="Watch history size (events).")] = 10_000,
    speed: Annotated[float, typer.Option("--speed", help="Virtual seconds of timeline per second.")] = 1.0,
    bookmark_interval: Annotated[
        float, typer.Option("--bookmark-interval", help="Seconds between watch bookmarks.")
    ] = 60.0,
) -> None:
    """Serve a Kubernetes-compatible simulated cluster (kubectl works against it)."""
    from aetherius.sim.cluster import SimCluster
    from aetherius.sim.scenario import ScenarioError, load_scenario
    from aetherius.sim.timeline import TimelineError

    if history < 1 or speed <= 0 or bookmark_interval <= 0:
        raise fail("--history, --speed and --bookmark-interval must be positive")
    try:
        loaded = load_scenario(scenario) if scenario else None
        cluster = SimCluster(
            loaded, port=port, history_size=history, speed=speed, bookmark_interval=bookmark_interval
        )
    except (ScenarioError, TimelineError, OSError) as exc:
        raise fail(f"aetherius sim: {exc}") from None
    try:
        asyncio.run(_serve(cluster, kubeconfig_out))
    except OSError as exc:
        raise fail(f"aetherius sim: cannot serve on 127.0.0.1:{port}: {exc}") from None
    except (ScenarioError, TimelineError, ValueError) as exc:
        raise fail(f"aetherius sim: {exc}") from None


async def _serve(cluster: object, kubeconfig_out: Path | None) -> None:
    from aetherius.sim.cluster import SimCluster

    assert isinstance(cluster, SimCluster)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with cluster:
        typer.echo(f"aetherius sim: serving {cluster.url}", err=False)
        if kubeconfig_out is not None:
            path = cluster.write_kubeconfig(kubeconfig_out)
            typer.echo(f"aetherius sim: kubeconfig {path}  (kubectl --kubeconfig {path} get pods -A)")
        await stop.wait()
        typer.echo("aetherius sim: stopping")
