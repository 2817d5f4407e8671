"""The ``aetherius`` command: one binary, a subcommand per role.

Each room owns its subcommands in ``aetherius/<room>/cli.py`` and registers them here, so this
module stays a table of contents.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
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

# Rooms that contribute subcommands, in the order they appear in --help, with the commands each
# registers (kept in step by tests/unit/test_cli_help.py).
_COMMAND_ROOMS: dict[str, tuple[str, ...]] = {
    "aetherius.sim.cli": ("sim",),
    "aetherius.watch.cli": ("watch",),
    "aetherius.diagnosis.cli": ("diagnose", "snapshot"),
    "aetherius.store.cli": ("db", "incidents", "token"),
    "aetherius.orchestrator.cli": ("orchestrator",),
    "aetherius.compose.cli": ("run", "demo", "api"),
    "aetherius.fleet.agent_cli": ("agent",),
    "aetherius.fleet.cli": ("cluster",),
}


@app.callback()
def _root() -> None:
    """Aetherius: read-only Kubernetes diagnostics — watch, diagnose, report."""


@app.command()
def version() -> None:
    """Print the Aetherius version."""
    from aetherius import __version__

    typer.echo(__version__)


_registered: set[str] = set()


def _register_rooms(rooms: Iterable[str] = _COMMAND_ROOMS) -> None:
    for module_name in rooms:
        if module_name not in _registered:
            importlib.import_module(module_name).register(app)
            _registered.add(module_name)


def full_app() -> typer.Typer:
    """The command with every room's subcommands (what ``--help`` shows)."""
    _register_rooms()
    return app


def _rooms_for(argv: list[str]) -> list[str]:
    """The one room a command line runs, or every room (help, an unknown or no command).

    NB: a role imports only its own room: the node agent, a DaemonSet with a 64 MiB request on
    every node, would otherwise carry the store's, the API's and the simulator's imports too.
    """
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    for module_name, commands in _COMMAND_ROOMS.items():
        if command in commands:
            return [module_name]
    return list(_COMMAND_ROOMS)


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
    _register_rooms(_rooms_for(sys.argv[1:]))
    command = typer.main.get_command(app)
    _plain_metavars(command)
    command(prog_name="aetherius")
