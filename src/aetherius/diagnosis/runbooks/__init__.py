"""Runbooks shipped with Aetherius: one markdown file per ``reason`` (``<slug>.md``)."""

from __future__ import annotations

import importlib.resources

__all__ = ["runbook_text"]


def runbook_text(slug: str) -> str | None:
    """The markdown of a runbook, or None when there is no such runbook."""
    resource = importlib.resources.files(__name__) / f"{slug}.md"
    return resource.read_text(encoding="utf-8") if resource.is_file() else None
