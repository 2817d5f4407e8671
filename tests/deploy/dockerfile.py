"""A small Dockerfile reader: enough to check the image recipe's promises in a test."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def of(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(text: str) -> list[Stage]:
    """Stages of a Dockerfile, each with its (KEYWORD, arguments) list; continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(
                r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE
            )
            assert match, f"cannot read FROM {args}"
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


_PIP_SUBCOMMANDS = {"install", "download", "wheel", "uninstall", "list", "show", "check", "freeze"}


def _from_subcommand(args: list[str]) -> list[str]:
    # Global options (``--python /opt/venv/bin/python``) may stand before the subcommand.
    for index, word in enumerate(args):
        if word in _PIP_SUBCOMMANDS:
            return args[index:]
    return args


def pip_commands(run: str) -> list[list[str]]:
    """The pip invocations of one RUN instruction, as argument lists starting at the subcommand."""
    commands: list[list[str]] = []
    for part in re.split(r"&&|;|\|\|", run):
        words = shlex.split(part)
        while words and words[0].startswith("--mount="):
            words = words[1:]
        if not words:
            continue
        if words[0] in {"pip", "pip3"} or words[0].endswith("/pip"):
            commands.append(_from_subcommand(words[1:]))
        elif len(words) > 2 and words[0].startswith("python") and words[1:3] == ["-m", "pip"]:
            commands.append(_from_subcommand(words[3:]))
    return commands


def recipe_problems(text: str) -> list[str]:
    """What the image recipe promises and a Dockerfile could break, one line per broken promise."""
    stages = parse(text)
    problems: list[str] = []
    if len(stages) < 2:
        return ["not a multi-stage build"]
    first, final = stages[0], stages[-1]
    if not any(cmd and cmd[0] == "wheel" for run in first.of("RUN") for cmd in pip_commands(run)):
        problems.append("the first stage does not build wheels with pip wheel")
    for run in final.of("RUN"):
        for cmd in pip_commands(run):
            if cmd and cmd[0] in {"install", "download"} and "--no-index" not in cmd:
                problems.append(f"the final stage installs from the network: pip {' '.join(cmd)}")
    if final.of("USER") != ["1000"]:
        problems.append(f"the final stage runs as {final.of('USER')}, not USER 1000")
    entry = final.of("ENTRYPOINT")
    if len(entry) != 1 or json.loads(entry[0]) != ["aetherius"]:
        problems.append(f'ENTRYPOINT is {entry}, not ["aetherius"]')
    env = " ".join(final.of("ENV"))
    if "PYTHONDONTWRITEBYTECODE=1" not in env:
        problems.append("PYTHONDONTWRITEBYTECODE=1 is not set")
    for name, value in re.findall(r"(XDG_\w+|TMPDIR)=(\S+)", env):
        if not value.startswith(("/tmp", "/var/lib/aetherius")):
            problems.append(f"{name}={value} points outside the mounted emptyDirs")
    for stage in stages:
        base = stage.base
        if base.startswith("${"):
            default = re.search(r"ARG PYTHON_IMAGE=(\S+)", text)
            base = default.group(1) if default else base
        if not re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base):
            problems.append(f"base image {base} is not a slim Python 3.11")
    return problems
