"""Subcommands of the orchestrator room."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
