"""Redaction applied to every object before it leaves the gateway.

Secrets are reduced to their metadata (never ``data``/``stringData``, never the last-applied
annotation that copies them); ConfigMaps keep their keys, not their values. Environment variables
keep their *source* (``secretKeyRef db-credentials/password``); literal values are masked when
the name looks sensitive. Every other string is scrubbed by content (``aetherius.scrub``).
"""

from __future__ import annotations

import re
from typing import Any

from aetherius.scrub import MASK, scrub_text

__all__ = ["MASK", "redact_object", "scrub_text", "sensitive_name"]

_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Env names that say their value is a credential (DB_PASS, SMTP_PWD, SLACK_WEBHOOK, STRIPE_SK,
# AZURE_STORAGE_CONNECTION_STRING…); other values are scrubbed by what they hold.
_SENSITIVE_NAME = re.compile(
    r"PASS|PWD|TOKEN|SECRET|KEY|CREDENTIAL|PRIVATE|AUTH|WEBHOOK|DSN|CONN(?:ECTION)?_?STR|COOKIE|SESSION"
    r"|(?:^|_)SK(?:$|_)|SIGNATURE|CERT",
    re.I,
)


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


# A command-line flag that takes a credential as the next argument (["--db-password", "x"]).
_SECRET_FLAG = re.compile(r"--?[\w-]*(?:pass|pwd|secret|token|api-?key|credential)[\w-]*", re.I)


def _redact_env(env: Any) -> None:
    if not isinstance(env, list):
        return
    for var in env:
        if isinstance(var, dict) and isinstance(var.get("valueFrom"), dict):
            var["source"] = _env_source(var["valueFrom"])


def _scrub_args(items: list[Any]) -> list[Any]:
    """Arguments scrubbed one by one, and the value after a credential flag masked whole."""
    out: list[Any] = []
    mask_next = False
    for item in items:
        if not isinstance(item, str):
            out.append(item)
            continue
        if mask_next and not item.startswith("-"):
            out.append(MASK)
            mask_next = False
            continue
        mask_next = bool(_SECRET_FLAG.fullmatch(item))
        out.append(scrub_text(item))
    return out


def _scrub(value: Any) -> Any:
    """Every string of a decoded object scrubbed by content, in place where it can be.

    ``{"name": N, "value": V}`` pairs (env variables, probe ``httpHeaders``) are masked when N
    names a credential, whatever V looks like; ``args``/``command`` lists mask the value after a
    credential flag.
    """
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _scrub(item)
        return value
    if isinstance(value, dict):
        named = value.get("name")
        for key, item in value.items():
            if key == "value" and isinstance(named, str) and isinstance(item, str) and sensitive_name(named):
                value[key] = MASK
            elif key in ("args", "command") and isinstance(item, list):
                value[key] = _scrub_args(item)
            else:
                value[key] = _scrub(item)
        return value
    return value


def _containers(obj: dict[str, Any]) -> list[Any]:
    """The container lists of a Pod or of a workload's pod template."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    template = spec.get("template")
    if obj.get("kind") == "CronJob" or "jobTemplate" in spec:
        job = spec.get("jobTemplate")
        job_spec = job.get("spec") if isinstance(job, dict) else None
        template = job_spec.get("template") if isinstance(job_spec, dict) else None
    pod_spec = template.get("spec") if isinstance(template, dict) else spec
    if not isinstance(pod_spec, dict):
        return []
    lists = [pod_spec.get(field) for field in ("containers", "initContainers", "ephemeralContainers")]
    return [
        c for containers in lists if isinstance(containers, list) for c in containers if isinstance(c, dict)
    ]


def redact_object(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Redact one object in place and return it (the caller owns the decoded dict).

    NB: objects leave through here into snapshot files that people attach to tickets, and into
    reports: every string is scrubbed by what it holds (annotations, probe headers, lifecycle
    commands, messages), env values by their name as well.
    """
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
            annotations.pop(_LAST_APPLIED)
    if kind == "Secret":
        kept = {key: obj[key] for key in ("apiVersion", "kind", "metadata", "type") if key in obj}
        return dict(_scrub(kept))
    if kind == "ConfigMap":
        # Keys tell which one is missing; values are configuration nobody needs to diagnose.
        for field in ("data", "binaryData"):
            data = obj.get(field)
            if isinstance(data, dict):
                obj[field] = dict.fromkeys(data, "")
    for container in _containers({"kind": kind, **obj}):
        _redact_env(container.get("env"))
    return dict(_scrub(obj))
