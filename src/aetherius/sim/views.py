"""events.k8s.io/v1 Events are a view of core/v1 Events, as on a real cluster (one storage).

An Event created through either API is visible through both, with the field names of the API
it is read through (``involvedObject``/``regarding``, ``message``/``note``, ``count``/``series``).
"""

from __future__ import annotations

from typing import Any

from aetherius.sim.resources import BY_PATH, ResourceType
from aetherius.sim.store import Obj

CORE_EVENTS = BY_PATH[("", "v1", "events")]

# core field -> events.k8s.io/v1 field, for the fields that are only renamed.
_RENAMED = {
    "involvedObject": "regarding",
    "related": "related",
    "message": "note",
    "reason": "reason",
    "type": "type",
    "action": "action",
    "eventTime": "eventTime",
    "reportingComponent": "reportingController",
    "reportingInstance": "reportingInstance",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
}
_BACK = {new: old for old, new in _RENAMED.items()}


def storage_type(rt: ResourceType) -> ResourceType:
    return CORE_EVENTS if rt.storage == "events" else rt


def from_storage(rt: ResourceType, obj: Obj) -> Obj:
    """The object as the API ``rt`` shows it."""
    if rt.storage != "events":
        return obj
    out: dict[str, Any] = {"apiVersion": rt.api_version, "kind": "Event", "metadata": obj.get("metadata", {})}
    for old, new in _RENAMED.items():
        if obj.get(old) is not None:
            out[new] = obj[old]
    if "series" in obj and obj["series"] is not None:
        out["series"] = obj["series"]
    if not out.get("reportingController"):
        component = (obj.get("source") or {}).get("component")
        if component:
            out["reportingController"] = component
    if not out.get("reportingInstance"):
        host = (obj.get("source") or {}).get("host")
        if host:
            out["reportingInstance"] = host
    return out


def to_storage(rt: ResourceType, obj: Obj) -> Obj:
    """An object sent to ``rt`` as the store keeps it."""
    if rt.storage != "events":
        return obj
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Event", "metadata": obj.get("metadata", {})}
    for new, old in _BACK.items():
        if obj.get(new) is not None:
            out[old] = obj[new]
    if obj.get("series") is not None:
        out["series"] = obj["series"]
    return out


def patch_to_storage(rt: ResourceType, patch: Obj) -> Obj:
    return {
        (_BACK.get(key, key) if key not in ("metadata", "series") else key): value
        for key, value in patch.items()
    }
