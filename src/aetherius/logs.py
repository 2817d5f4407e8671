"""Structured logs: one JSON object a line, the cluster id on every line.

Every role logs through structlog bound to the process-wide context (cluster id, role), so a
log aggregator can split a multi-cluster stream without parsing messages.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure_logging(*, level: str = "info", fmt: str = "auto", **context: Any) -> None:
    """Configure structlog and the stdlib root logger once per process.

    ``fmt`` "auto" writes for a person on a terminal (so the dashboard address and the first admin
    token are not buried in JSON) and JSON lines anywhere else, e.g. in a pod.
    ``context`` (e.g. ``cluster_id=…``, ``role=…``) is bound to every line that follows.
    """
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # NB: plain tracebacks: a rich one prints every local, and locals can hold credentials.
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, force=True)
    bind_context(**context)


def bind_context(**context: Any) -> None:
    """Add keys (cluster id once detected, role) to every later log line of this process."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in context.items() if v is not None})


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
