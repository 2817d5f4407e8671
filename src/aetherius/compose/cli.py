"""Subcommands that compose rooms: ``run``, ``demo`` and ``api`` (the API with the dashboard)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from aetherius.cli.common import (
    BusOption,
    ConfigOption,
    ContextsOption,
    InClusterOption,
    KubeconfigsOption,
    LogLevelOption,
    cluster_flags,
    fail,
    settings_from_cli,
)
from aetherius.config import Settings
from aetherius.orchestrator.cli import DatabaseOption

HostOption = Annotated[
    str | None,
    typer.Option("--host", help="Dashboard/API address (default 127.0.0.1; 0.0.0.0 with --in-cluster)."),
]
PortOption = Annotated[int | None, typer.Option("--port", help="Dashboard/API port (default 8080).")]


def register(app: typer.Typer) -> None:
    """Add these subcommands to the aetherius command."""
    app.command("run")(run_command)
    app.command("demo")(demo_command)
    app.command("api")(api_command)


def run_command(
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    kubeconfig: KubeconfigsOption = None,
    context: ContextsOption = None,
    in_cluster: InClusterOption = False,
    host: HostOption = None,
    port: PortOption = None,
    bus: BusOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Watcher + orchestrator + dashboard in one process (in-process bus, SQLite by default)."""
    one_kubeconfig, one_context, clusters = cluster_flags(kubeconfig, context)
    settings = settings_from_cli(
        config=config,
        log_level=log_level,
        in_cluster=in_cluster,
        kubeconfig=one_kubeconfig,
        context=one_context,
        clusters=clusters,
        overrides={
            ("message_bus", "url"): bus or "memory://",
            ("database", "url"): database_url,
            ("api", "host"): host or ("0.0.0.0" if in_cluster else None),
            ("api", "port"): port,
        },
        role="run",
    )
    from aetherius.compose.run import serve_all
    from aetherius.orchestrator.process import StartError
    from aetherius.orchestrator.runtime import run_until_stopped

    async def main(stop: asyncio.Event) -> None:
        await serve_all(settings, stop=stop, announce=typer.echo)

    try:
        asyncio.run(run_until_stopped(main))
    except StartError as exc:
        raise fail(f"aetherius run: {exc}", code=1) from None
    except KeyboardInterrupt:
        pass


def demo_command(
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error")] = "warning",
    host: Annotated[str, typer.Option("--host", help="Dashboard address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Dashboard port (0 picks a free one).")] = 8080,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.", min=0.1)
    ] = None,
    exit_when_done: Annotated[
        bool, typer.Option("--exit-when-done", help="Stop once the timeline has played and all is reported.")
    ] = False,
    speed: Annotated[
        float, typer.Option("--speed", help="Virtual seconds of the demo timeline per second.", min=0.1)
    ] = 10.0,
) -> None:
    """Break a simulated cluster in six real ways and watch Aetherius diagnose them (no setup)."""

    def settings_for(kubeconfig: Path, database: Path) -> Settings:
        return settings_from_cli(
            config=config,
            log_level=log_level,
            kubeconfig=kubeconfig,
            overrides={
                ("message_bus", "url"): "memory://demo",
                ("database", "url"): f"sqlite:///{database}",
                ("redis", "url"): "",
                ("api", "host"): host,
                ("api", "port"): port,
                ("log_format",): "console",
                ("cluster_id",): "demo",
                ("kube", "qps"): 200.0,
                ("kube", "burst"): 400,
            },
            role="demo",
        )

    from aetherius.compose.demo import run_demo
    from aetherius.orchestrator.process import StartError
    from aetherius.orchestrator.runtime import run_until_stopped

    complete = [True]

    async def main(stop: asyncio.Event) -> None:
        complete[0] = await run_demo(
            settings_for, stop=stop, announce=typer.echo, speed=speed, exit_when_done=exit_when_done
        )

    try:
        asyncio.run(run_until_stopped(main, duration=duration))
    except StartError as exc:
        raise fail(f"aetherius demo: {exc}", code=1) from None
    except KeyboardInterrupt:
        pass
    if not complete[0]:
        raise typer.Exit(1)  # --exit-when-done gave up waiting; the demo said for what


def api_command(
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to bind (default 8080).")] = None,
) -> None:
    """Serve the REST API (/api/v1), the Event Gateway (/webhooks) and the dashboard."""
    settings = settings_from_cli(
        config=config,
        log_level=log_level,
        overrides={("api", "host"): host, ("api", "port"): port},
        role="api",
    )
    from aetherius.api.serve import ServeError, serve
    from aetherius.compose.app import DASHBOARD

    try:
        asyncio.run(serve(settings, announce=typer.echo, extensions=DASHBOARD))
    except ServeError as exc:
        raise fail(str(exc), code=1) from None
    except KeyboardInterrupt:
        pass
