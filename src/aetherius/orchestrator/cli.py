"""Subcommands of the orchestrator room: ``orchestrator``."""

from __future__ import annotations

import asyncio
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

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="postgresql://… or sqlite:///path (default: the embedded SQLite file)."
    ),
]
RedisOption = Annotated[
    str | None, typer.Option("--redis-url", help="redis://host:6379/0 for cooldowns shared by replicas.")
]


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
    app.command("orchestrator")(orchestrator_command)


def orchestrator_command(
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    kubeconfig: KubeconfigsOption = None,
    context: ContextsOption = None,
    in_cluster: InClusterOption = False,
    bus: BusOption = None,
    database_url: DatabaseOption = None,
    redis_url: RedisOption = None,
) -> None:
    """Turn Signals from the bus into incidents, diagnose them live and keep the reports."""
    one_kubeconfig, one_context, clusters = cluster_flags(kubeconfig, context)
    settings = settings_from_cli(
        config=config,
        log_level=log_level,
        in_cluster=in_cluster,
        kubeconfig=one_kubeconfig,
        context=one_context,
        clusters=clusters,
        overrides={
            ("message_bus", "url"): bus,
            ("database", "url"): database_url,
            ("redis", "url"): redis_url,
        },
        role="orchestrator",
    )
    from aetherius.orchestrator.process import StartError, serve_orchestrator

    try:
        asyncio.run(serve_orchestrator(settings))
    except StartError as exc:
        raise fail(f"aetherius orchestrator: {exc}", code=1) from None
    except KeyboardInterrupt:
        pass
