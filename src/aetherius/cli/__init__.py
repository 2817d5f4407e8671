"""The ``aetherius`` command: one binary, a subcommand per role.

Each room owns its subcommands in ``aetherius/<room>/cli.py`` and registers them here, so this
module stays a table of contents.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

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
    "aetherius.agent.cli",
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


def _plain_metavars(command: Any) -> None:
    """Flags show no type label: typer's ``<bool>`` beside ``--exit-when-done`` makes a flag look
    as if it took a value."""
    # NB: typer carries its own copy of click, so its classes are matched by what they hold; the
    # --help option is made (once, then cached) on first use, so it is made here.
    help_option = command.get_help_option(SimpleNamespace(help_option_names=["--help"]))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if param.param_type_name == "option" and param.metavar is None and param.is_flag:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


def main() -> None:
    command = typer.main.get_command(app)
    _plain_metavars(command)
    command(prog_name="aetherius")
