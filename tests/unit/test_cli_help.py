"""Help pages a person can read: a flag never looks as if it took a value."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import typer

from aetherius.cli import _COMMAND_ROOMS, full_app


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths.extend(_command_paths(sub, (*prefix, name)))
    return paths


def test_no_help_page_labels_a_flag_with_a_type() -> None:
    paths = _command_paths(typer.main.get_command(full_app()))
    assert ("demo",) in paths and ("diagnose",) in paths
    env = {**os.environ, "COLUMNS": "160"}
    for path in paths:
        result = subprocess.run(
            [sys.executable, "-m", "aetherius", *path, "--help"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=env,
        )
        assert result.returncode == 0, (path, result.stderr)
        assert "--help" in result.stdout and "<bool>" not in result.stdout, (path, result.stdout)


def test_the_command_table_is_what_each_room_registers() -> None:
    import importlib

    for module_name, commands in _COMMAND_ROOMS.items():
        room = typer.Typer()
        importlib.import_module(module_name).register(room)
        names = [c.name for c in room.registered_commands] + [g.name for g in room.registered_groups]
        assert tuple(names) == commands, module_name


def test_a_role_imports_only_its_own_room() -> None:
    """The node agent (a DaemonSet on every node) loads no database, API or simulator code."""
    probe = (
        "import sys\n"
        "sys.argv = ['aetherius', 'agent', '--help']\n"
        "from aetherius.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'alembic', 'asyncpg', 'fastapi', 'aetherius.sim', "
        "'aetherius.store', 'aetherius.api', 'aetherius.diagnosis') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert "HEAVY []" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
