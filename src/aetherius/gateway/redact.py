"""Redaction applied to everything before it leaves the gateway.

Three rules. Secrets are reduced to their metadata (never ``data``/``stringData``, never the
last-applied annotation that copies them). Environment variables keep their *source*
(``secretKeyRef db-credentials/password``) and literal values are scrubbed, or masked when the name
looks sensitive. Free text (logs, event messages, termination messages, args) is scrubbed of the
credential shapes that show up in real logs.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "redact_object", "scrub_text", "sensitive_name"]

MASK = "[REDACTED]"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SENSITIVE_NAME = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|TOKEN|SECRET|KEY|CREDENTIAL|PRIVATE|AUTH", re.I)

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1\2{MASK}"),
    # JSON Web Tokens anywhere.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # user:password@ in URLs (postgres://app:hunter2@db:5432/shop).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/\s@]*:)[^@\s/]+(@)"), rf"\1{MASK}\2"),
    # AWS access key ids, GCP API keys, GitHub and Slack tokens.
    (re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z\-_]{35}\b"), MASK),
    (re.compile(r"\b(?:ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,}\b"), MASK),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), MASK),
    # key=value / key: value / "key": "value" where the key names a credential.
    (
        re.compile(
            r"""(?ix)
            (["']?[\w.\-]*(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key
                |private[_\-]?key(?:[_\-]?id)?|credentials?|auth)["']?)
            (\s*[=:]\s*)
            (["']?)
            (?!\[REDACTED\])[^\s"',;&}]+
            """
        ),
        rf"\1\2\3{MASK}",
    ),
]


# Words one of the patterns above needs to match: most text (event messages, evidence lines,
# healthy logs) contains none of them and is returned after a few substring scans of its lower
# case. NB: plain ``in`` tests, not one case-insensitive alternation: CPython's regex engine tries
# every alternative at every position, which cost ~15 µs per short string.
_TRIGGERS = (
    "bearer",
    "basic",
    "eyj",
    "://",
    "akia",
    "asia",
    "aroa",
    "aida",
    "aiza",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "github_pat",
    "xox",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "auth",
)


def _triggered(text: str) -> bool:
    lowered = text.lower()
    # NB: a loop, not ``any()`` over a generator: that resumes a frame per word, ~20% of the cost
    # of a diagnosis's scrubbing (every distinct line of every finding comes here).
    for word in _TRIGGERS:  # noqa: SIM110
        if word in lowered:
            return True
    return False


def scrub_text(text: str) -> str:
    """Mask credentials in free text; cheap when there is nothing to mask."""
    if not text or not _triggered(text):
        return text
    text = _PEM.sub(MASK, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def sensitive_name(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name))


def _env_source(value_from: dict[str, Any]) -> str:
    for ref in ("secretKeyRef", "configMapKeyRef"):
        sel = value_from.get(ref)
        if isinstance(sel, dict):
            return f"{ref} {sel.get('name', '?')}/{sel.get('key', '?')}"
    field = value_from.get("fieldRef")
    if isinstance(field, dict):
        return f"fieldRef {field.get('fieldPath', '?')}"
    res = value_from.get("resourceFieldRef")
    if isinstance(res, dict):
        return f"resourceFieldRef {res.get('resource', '?')}"
    return "valueFrom"


def _redact_containers(containers: Any) -> None:
    if not isinstance(containers, list):
        return
    for container in containers:
        if not isinstance(container, dict):
            continue
        env = container.get("env")
        if isinstance(env, list):
            for var in env:
                if not isinstance(var, dict):
                    continue
                value_from = var.get("valueFrom")
                if isinstance(value_from, dict):
                    var["source"] = _env_source(value_from)
                if "value" in var:
                    value = var["value"]
                    name = str(var.get("name", ""))
                    var["value"] = MASK if sensitive_name(name) else scrub_text(str(value))
        for field in ("args", "command"):
            items = container.get(field)
            if isinstance(items, list):
                container[field] = [scrub_text(str(item)) for item in items]


def _redact_pod_spec(spec: Any) -> None:
    if isinstance(spec, dict):
        _redact_containers(spec.get("containers"))
        _redact_containers(spec.get("initContainers"))
        _redact_containers(spec.get("ephemeralContainers"))


def _redact_statuses(statuses: Any) -> None:
    if not isinstance(statuses, list):
        return
    for status in statuses:
        if not isinstance(status, dict):
            continue
        for key in ("state", "lastState"):
            state = status.get(key)
            if isinstance(state, dict):
                for detail in state.values():
                    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
                        detail["message"] = scrub_text(detail["message"])


def redact_object(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Redact one object in place and return it (the caller owns the decoded dict)."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
            annotations.pop(_LAST_APPLIED)
    if kind == "Secret":
        return {key: obj[key] for key in ("apiVersion", "kind", "metadata", "type") if key in obj}
    if kind == "ConfigMap":
        # Keys tell which one is missing; values are configuration nobody needs to diagnose.
        for field in ("data", "binaryData"):
            data = obj.get(field)
            if isinstance(data, dict):
                obj[field] = dict.fromkeys(data, "")
        return obj
    if kind == "Pod":
        _redact_pod_spec(obj.get("spec"))
        status = obj.get("status")
        if isinstance(status, dict):
            _redact_statuses(status.get("containerStatuses"))
            _redact_statuses(status.get("initContainerStatuses"))
            if isinstance(status.get("message"), str):
                status["message"] = scrub_text(status["message"])
        return obj
    if kind == "Event":
        for field in ("message", "note"):
            if isinstance(obj.get(field), str):
                obj[field] = scrub_text(obj[field])
        return obj
    spec = obj.get("spec")
    if isinstance(spec, dict):
        template = spec.get("template")
        if kind == "CronJob":
            job_template = spec.get("jobTemplate")
            job_spec = job_template.get("spec") if isinstance(job_template, dict) else None
            template = job_spec.get("template") if isinstance(job_spec, dict) else None
        if isinstance(template, dict):
            _redact_pod_spec(template.get("spec"))
    return obj
