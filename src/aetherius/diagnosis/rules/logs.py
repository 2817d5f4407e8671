"""Container logs → root cause. Specific causes outrank generic ones: a stack trace that ends in
``connection refused`` is a dependency problem, not an application bug."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LogVerdict", "classify_logs", "dependency_target"]

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
            r"unrecognized arguments|no such option|exec .*: no such file or directory|"
            r"[Ss]yntax error(?::| near unexpected token)|unexpected end of file|unterminated quoted string",
            re.I,
        ),
    ),
    (
        "MissingConfiguration",
        "runs as root",
        re.compile(
            r"(?:refus\w* to|will not|won't|cannot|can't|must not|should not|do not|don't) (?:be )?run "
            r"(?:\w+ )?as root|running as root is not (?:allowed|supported|permitted)|"
            r"not (?:allowed|permitted) to run as root|root user is not allowed",
            re.I,
        ),
    ),
    (
        "MissingConfiguration",
        "TLS certificate",
        re.compile(
            r"x509: certificate has expired|certificate has expired or is not yet valid|CERT_HAS_EXPIRED|"
            r"certificate (?:is )?not yet valid|certificate verify failed|x509: certificate signed by unknown|"
            r"x509: certificate is valid for|SSLCertVerificationError",
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
            r"password authentication failed|invalid (?:api[ _-]?key|credentials)|"
            r"\b[A-Z][A-Z0-9_]{2,}\b(?: environment variable)? (?:is )?(?:undefined|not defined|unset)\b",
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
    target: str = ""  # DependencyUnavailable: the host[:port] the log could not reach
    count: int = 0  # how many lines of the text say it
    total: int = 0  # how many lines the text has


# Where a log names the peer it could not reach, most specific first. A name beats an address:
# "postgres.shop.svc:5432" leads to a Service, "10.96.14.7:5672" to nothing a person recognises.
_TARGETS = (
    re.compile(r"lookup ([A-Za-z0-9][\w.-]*)(?: on [\d.:\[\]]+)?: no such host"),
    re.compile(
        r"(?:ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|resolve host:?)\s+([A-Za-z0-9][\w.-]*(?::\d{1,5})?)",
        re.I,
    ),
    re.compile(
        r"(?:connect(?:ing)? to|connection to|reach|dial tcp|dial udp)\s+\(?\"?([A-Za-z0-9][\w.-]*:\d{1,5})\b",
        re.I,
    ),
    re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s]*@)?([A-Za-z0-9][\w.-]*(?::\d{1,5})?)"),
    re.compile(r"\b([A-Za-z][\w-]*(?:\.[\w-]+)*:\d{2,5})\b"),
)
# libpq: 'Is the server running on host "postgres" (10.0.0.1) and accepting TCP/IP connections on port 5432?'
_LIBPQ = re.compile(r'host "([\w.-]+)".*?port (\d{1,5})')
_ADDRESS = re.compile(r"^[\d.]+(?::\d+)?$")


def dependency_target(lines: list[str]) -> str:
    """The host[:port] these log lines failed to reach ("" when none is named); names first."""
    found: list[str] = []
    for line in reversed(lines):
        found += [f"{host}:{port}" for host, port in _LIBPQ.findall(line)]
        for pattern in _TARGETS:
            found += pattern.findall(line)
    named = [host for host in found if not _ADDRESS.match(host)]
    return (named or found or [""])[0]


def classify_logs(text: str, *, max_lines: int = 3) -> LogVerdict | None:
    """The most specific cause the log shows, with the lines that show it (last ones first)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    for root_cause, label, pattern in _RULES:
        hits = [line for line in lines if pattern.search(line)]
        if hits:
            shown = [h[:300] for h in hits[-max_lines:]]
            target = dependency_target(hits) if root_cause == "DependencyUnavailable" else ""
            return LogVerdict(
                root_cause=root_cause,
                label=label,
                lines=shown,
                target=target,
                count=len(hits),
                total=len(lines),
            )
    return None


def tail(text: str, *, count: int = 3) -> list[str]:
    return [line.strip()[:300] for line in text.splitlines() if line.strip()][-count:]


_FORBIDDEN = re.compile(
    r'User "(?:system:serviceaccount:)?([^"]+)" cannot (\w+) resource "([^"]+)"(?: in API group "([^"]*)")?'
)
_UNSET_VAR = re.compile(
    r"\b([A-Z][A-Z0-9_]{2,})\b(?: environment variable)? (?:is )?(?:undefined|not defined|unset|not set|missing|required)"
    r"|(?:environment variable|env var)\s+['\"]?([A-Z][A-Z0-9_]{2,})|KeyError: ['\"]([A-Z][A-Z0-9_]{2,})['\"]",
    re.I,
)
_NXDOMAIN = re.compile(r"no such host|NXDOMAIN|ENOTFOUND|Name or service not known|could not resolve", re.I)


def key_fact(verdict: LogVerdict) -> str:
    """The verdict in words that name its key fact, to follow "Container X …" ("" if none found).

    NB: the summary is what a person reads first: "cannot reach postgres:5432" says where to look,
    "cannot reach a service it depends on" does not.
    """
    text = "\n".join(verdict.lines)
    if verdict.root_cause == "DependencyUnavailable" and verdict.target:
        if _NXDOMAIN.search(text):
            return f"cannot resolve the host name {verdict.target.rsplit(':', 1)[0]} (DNS)"
        return f"cannot reach {verdict.target}"
    if verdict.root_cause == "PermissionDenied":
        match = _FORBIDDEN.search(text)
        if match:
            who, verb, resource, group = match.groups()
            api = f".{group}" if group else ""
            return f"is forbidden to {verb} {resource}{api} (RBAC, as {who})"
    if verdict.label == "runs as root":
        return "refuses to run as root"
    if verdict.label == "TLS certificate":
        if re.search(r"expired|not yet valid", text, re.I):
            return "fails on a TLS certificate that is expired or not yet valid"
        return "fails to verify a TLS certificate"
    if verdict.root_cause == "InvalidCommand" and re.search(
        r"syntax error|unexpected end of file", text, re.I
    ):
        return "has a syntax error in its shell script"
    if verdict.root_cause == "MissingConfiguration":
        match = _UNSET_VAR.search(text)
        if match:
            name = next(group for group in match.groups() if group)
            return f"is missing the required variable {name}"
    return ""
