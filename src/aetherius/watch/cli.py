"""Subcommands of the watch room: ``aetherius watch``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from aetherius.cli.common import (
    BusOption,
    ConfigOption,
    ContextOption,
    InClusterOption,
    KubeconfigOption,
    LogLevelOption,
    fail,
    settings_from_cli,
)


def watch(
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    in_cluster: InClusterOption = False,
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    bus: BusOption = None,
    health_port: Annotated[int | None, typer.Option("--health-port", help="Default 8080.")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Default 9090.")] = None,
    ready_file: Annotated[
        str | None,
        typer.Option("--ready-file", help="Write '<health port> <metrics port>' here once started."),
    ] = None,
) -> None:
    """Watch the cluster's Events and Pods and publish Signals to the bus."""
    settings = settings_from_cli(
        config=config,
        log_level=log_level,
        in_cluster=in_cluster,
        kubeconfig=kubeconfig,
        context=context,
        overrides={
            ("message_bus", "url"): bus,
            ("health", "port"): health_port,
            ("metrics", "port"): metrics_port,
        },
        role="watch",
    )
    from aetherius.ops.serve import StartupError
    from aetherius.watch.service import run_watch

    try:
        code = asyncio.run(run_watch(settings, ready_file=ready_file))
    except StartupError as exc:
        raise fail(f"aetherius watch: {exc}", code=1) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
    app.command("watch")(watch)
