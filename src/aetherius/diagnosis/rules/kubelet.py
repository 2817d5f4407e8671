"""Kubelet's container-config, create and mount errors → root cause and the missing object."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ConfigVerdict", "classify_create", "classify_mount"]

_MISSING_OBJ = re.compile(
    r'(configmap|secret|persistentvolumeclaim|serviceaccount)s? "([^"]+)" not found', re.I
)
_MISSING_KEY = re.compile(r"couldn't find key (\S+) in (ConfigMap|Secret) ([\w.-]+)/([\w.-]+)", re.I)
_NON_ROOT = re.compile(r"runAsNonRoot|non-numeric user|not allowed|forbidden|permission denied", re.I)
_COMMAND = re.compile(
    r"executable file not found|no such file or directory|exec format error|permission denied|"
    r"no command specified|not a directory|is a directory",
    re.I,
)
_MOUNT = re.compile(r"mount|volume|not a shared mount|subPath", re.I)


@dataclass(frozen=True, slots=True)
class ConfigVerdict:
    root_cause: str
    object_kind: str = ""  # ConfigMap | Secret | PersistentVolumeClaim | ServiceAccount
    object_name: str = ""
    key: str = ""


def classify_create(message: str) -> ConfigVerdict:
    """CreateContainerConfigError / CreateContainerError / RunContainerError / StartError text."""
    key = _MISSING_KEY.search(message)
    if key:
        return ConfigVerdict("MissingConfiguration", key.group(2), key.group(4), key.group(1))
    missing = _MISSING_OBJ.search(message)
    if missing:
        kind = {"configmap": "ConfigMap", "secret": "Secret", "serviceaccount": "ServiceAccount"}.get(
            missing.group(1).lower(), "PersistentVolumeClaim"
        )
        cause = "MissingConfiguration" if kind in ("ConfigMap", "Secret") else "MissingReference"
        return ConfigVerdict(cause, kind, missing.group(2))
    if re.search(r"runAsNonRoot|non-numeric user", message, re.I):
        return ConfigVerdict("PermissionDenied")
    launch = re.search(
        r"exec|command|entrypoint|executable|OCI runtime|starting container process", message, re.I
    )
    if launch and _COMMAND.search(message):
        return ConfigVerdict("InvalidCommand")
    if _MOUNT.search(message):
        return ConfigVerdict("VolumeMountFailure")
    if _NON_ROOT.search(message):
        return ConfigVerdict("PermissionDenied")
    return ConfigVerdict("Unknown")


def classify_mount(message: str) -> ConfigVerdict:
    """FailedMount / FailedAttachVolume event text."""
    missing = _MISSING_OBJ.search(message)
    if missing:
        kind = {"configmap": "ConfigMap", "secret": "Secret"}.get(
            missing.group(1).lower(), "PersistentVolumeClaim"
        )
        cause = "MissingConfiguration" if kind in ("ConfigMap", "Secret") else "MissingReference"
        return ConfigVerdict(cause, kind, missing.group(2))
    return ConfigVerdict("VolumeMountFailure")
