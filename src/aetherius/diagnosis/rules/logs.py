"""Container logs → root cause. Specific causes outrank generic ones: a stack trace that ends in
``connection refused`` is a dependency problem, not an application bug."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LogVerdict", "classify_logs"]

_RULES: list[tuple[str, str, re.Pattern[str]]] = [
    (
        "OutOfMemory",
        "out of memory",
        re.compile(
            r"OutOfMemoryError|JavaScript heap out of memory|fatal error: runtime: out of memory|"
            r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory",
            re.I,
        ),
    ),
    (
        "InvalidCommand",
        "command not found",
        re.compile(
            r"executable file not found|exec format error|exec: \S+: not found|command not found|"
            r"flag provided but not defined|unknown (?:flag|option|command|shorthand flag)|"
            r"unrecognized arguments|no such option|exec .*: no such file or directory",
            re.I,
        ),
    ),
    (
        "PermissionDenied",
        "forbidden",
        re.compile(
            r"is forbidden: User \"[^\"]+\" cannot|cannot (?:get|list|watch|create|update|patch|delete) "
            r"resource|AccessDenied|is not authorized to perform|PERMISSION_DENIED|AuthorizationFailed|"
            r"403 Forbidden|status code 403",
            re.I,
        ),
    ),
    (
        "MissingConfiguration",
        "missing configuration",
        re.compile(
            r"(?:environment variable|env var|env)\s+\S+\s+(?:is\s+)?(?:not set|missing|required|empty)|"
            r"(?:missing|required) (?:required )?(?:environment variable|env var|config(?:uration)? key|setting)|"
            r"KeyError: ['\"][A-Z0-9_]+['\"]|must be set|is required but (?:was )?not (?:set|provided)|"
            r"(?:config|configuration) file .*(?:not found|no such file)|"
            r"open \S+\.(?:ya?ml|json|toml|ini|conf|properties): no such file or directory|"
            r"password authentication failed|invalid (?:api[ _-]?key|credentials)",
            re.I,
        ),
    ),
    (
        "DependencyUnavailable",
        "dependency unreachable",
        re.compile(
            r"connection refused|ECONNREFUSED|no such host|Name or service not known|"
            r"Temporary failure in name resolution|getaddrinfo (?:ENOTFOUND|EAI_AGAIN)|"
            r"Could not resolve host|i/o timeout|ETIMEDOUT|connection timed out|timed out connecting|"
            r"context deadline exceeded|no route to host|EHOSTUNREACH|connection reset by peer|"
            r"could not connect to|unable to connect to|failed to connect to|Connection refused|"
            r"503 Service Unavailable|UNAVAILABLE:",
            re.I,
        ),
    ),
    (
        "ApplicationError",
        "application error",
        re.compile(
            r"^panic:|goroutine \d+ \[running\]|Traceback \(most recent call last\)|"
            r"Exception in thread|Unhandled (?:exception|rejection)|uncaughtException|"
            r"Segmentation fault|SIGSEGV|\bFATAL\b|\bfatal error\b|^\s*at [\w.$]+\(.*\)$|"
            r"\b[A-Z]\w*(?:Error|Exception)\b:",
            re.I | re.M,
        ),
    ),
]


@dataclass(frozen=True, slots=True)
class LogVerdict:
    root_cause: str
    label: str
    lines: list[str]


def classify_logs(text: str, *, max_lines: int = 3) -> LogVerdict | None:
    """The most specific cause the log shows, with the lines that show it (last ones first)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    for root_cause, label, pattern in _RULES:
        hits = [line for line in lines if pattern.search(line)]
        if hits:
            return LogVerdict(root_cause=root_cause, label=label, lines=[h[:300] for h in hits[-max_lines:]])
    return None


def tail(text: str, *, count: int = 3) -> list[str]:
    return [line.strip()[:300] for line in text.splitlines() if line.strip()][-count:]
