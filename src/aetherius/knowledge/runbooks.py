"""Runbooks: markdown files, one per failure, shipped with Aetherius or the user's own.

A runbook may start with YAML front matter naming what it is for; without it, the file name is
its slug and the first ``# heading`` its title::

    ---
    title: Container killed for memory (OOMKilled)
    reasons: [OOMKilled]
    root_causes: [OutOfMemory]
    ---
    # Container killed for memory
    ...

Findings cite runbooks by slug (``"runbook": "oom-killed"``); ``reasons``/``root_causes`` let a
user's runbook cover a failure without knowing our slugs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MAX_RUNBOOK_BYTES = 256 * 1024


class RunbookError(Exception):
    """A runbook file that cannot be used, named with the reason (the others still load)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Runbook:
    slug: str
    title: str
    reasons: tuple[str, ...]
    root_causes: tuple[str, ...]
    body: str
    path: Path


def _names(value: object, *, key: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.strip() and " " not in v for v in value
    ):
        raise RunbookError(f"{path}: {key} must be a list of names without spaces")
    return tuple(v.strip() for v in value)


def parse_runbook(path: Path) -> Runbook:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RunbookError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_RUNBOOK_BYTES:
        raise RunbookError(f"{path}: larger than {MAX_RUNBOOK_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RunbookError(f"{path}: not UTF-8 text") from None
    meta: dict[str, object] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            raise RunbookError(f"{path}: front matter is not valid YAML") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise RunbookError(f"{path}: front matter must be a mapping")
        meta = loaded or {}
        text = text[match.end() :]
    slug = str(meta.get("slug") or path.stem).strip().lower()
    if not _SLUG.match(slug):
        raise RunbookError(f"{path}: slug {slug!r} must be lower-case letters, digits, '.', '_' or '-'")
    heading = _HEADING.search(text)
    title = str(meta.get("title") or (heading.group(1) if heading else slug.replace("-", " ")))
    body = text.strip()
    if not body:
        raise RunbookError(f"{path}: empty runbook")
    return Runbook(
        slug=slug,
        title=title.strip(),
        reasons=_names(meta.get("reasons"), key="reasons", path=path),
        root_causes=_names(meta.get("root_causes"), key="root_causes", path=path),
        body=body,
        path=path,
    )


def load_runbooks(directory: Path) -> tuple[list[Runbook], list[str]]:
    """Every ``*.md`` under ``directory`` (sorted), and one message per file that was refused.

    NB: a mounted ConfigMap holds its files behind ``..data`` symlinks; hidden entries are skipped
    so each runbook is read once.
    """
    if not directory.is_dir():
        return [], [f"{directory}: runbook directory does not exist"]
    runbooks: list[Runbook] = []
    problems: list[str] = []
    seen: set[str] = set()
    for path in sorted(directory.rglob("*.md")):
        if any(part.startswith(".") for part in path.relative_to(directory).parts):
            continue
        try:
            runbook = parse_runbook(path)
        except RunbookError as exc:
            problems.append(str(exc))
            continue
        if runbook.slug in seen:
            problems.append(f"{path}: slug {runbook.slug!r} is used by another runbook in {directory}")
            continue
        seen.add(runbook.slug)
        runbooks.append(runbook)
    return runbooks, problems
