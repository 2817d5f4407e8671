"""Rendering a Report: JSON for machines, Markdown (a Jinja2 template in ``templates/``) for people."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from aetherius.reports.model import Report

MAX_CELL = 300


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: str) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes, bounded."""
    flat = " ".join(value.split()).replace("|", "\\|")
    return flat if len(flat) <= MAX_CELL else flat[: MAX_CELL - 1] + "…"


def _code(value: str) -> str:
    return " ".join(value.split()).replace("`", "'")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # NB: Markdown, not HTML: no autoescape; the dashboard renders it with its own sanitizer.
    env = Environment(
        loader=PackageLoader("aetherius.reports", "templates"),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["when"] = _when
    env.filters["cell"] = _cell
    env.filters["code"] = _code
    return env


def render_markdown(report: Report) -> str:
    text = _environment().get_template("report.md.j2").render(report=report)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
