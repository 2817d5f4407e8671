"""The ``aetherius`` command: one binary, a subcommand per role.

Each room owns its subcommands in ``aetherius/<room>/cli.py`` and registers them here, so this
module stays a table of contents.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="aetherius",
    help="Aetherius: read-only Kubernetes diagnostics — watch, diagnose, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Rooms that contribute subcommands, in the order they appear in --help.
_COMMAND_ROOMS = (
    "aetherius.sim.cli",
    "aetherius.watch.cli",
    "aetherius.diagnosis.cli",
    "aetherius.store.cli",
    "aetherius.orchestrator.cli",
    "aetherius.api.cli",
)


@app.callback()
def _root() -> None:
    """Aetherius: read-only Kubernetes diagnostics — watch, diagnose, report."""


@app.command()
def version() -> None:
    """Print the Aetherius version."""
    from aetherius import __version__

    typer.echo(__version__)


def _register_rooms() -> None:
    for module_name in _COMMAND_ROOMS:
        importlib.import_module(module_name).register(app)


_register_rooms()


def main() -> None:
    app()
