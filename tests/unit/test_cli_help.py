"""Help pages a person can read: a flag never looks as if it took a value."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import typer

from aetherius.cli import app


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths.extend(_command_paths(sub, (*prefix, name)))
    return paths


def test_no_help_page_labels_a_flag_with_a_type() -> None:
    paths = _command_paths(typer.main.get_command(app))
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
