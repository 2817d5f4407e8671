"""Subcommands of the api room: ``aetherius api`` serves the REST API, webhooks and dashboard."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from aetherius.cli.common import ConfigOption, LogLevelOption, fail, settings_from_cli


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
    app.command("api")(api_command)


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

    try:
        asyncio.run(serve(settings, announce=typer.echo))
    except ServeError as exc:
        raise fail(str(exc), code=1) from None
    except KeyboardInterrupt:
        pass
