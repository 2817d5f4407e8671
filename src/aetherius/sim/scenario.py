"""Scenario files: a kubectl ``List`` or a multi-document YAML/JSON stream of objects.

The format is the snapshot format of docs/diagnosis-contract.md (``PodLogs`` items carry container
logs); one extra kind, ``aetherius.io/v1 SimTimeline``, carries the steps the timeline plays.
Tools that read snapshots ignore it (unknown kinds are ignored there), so a scenario file is
also a valid snapshot of its initial state.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from aetherius.sim.resources import UnknownKind, resource_for

Obj = dict[str, Any]

# Objects are created in this order so owners and namespaces exist before what refers to them.
_ORDER = ("Namespace", "Node", "StorageClass", "IngressClass", "PersistentVolume")


class ScenarioError(ValueError):
    """The scenario file cannot be read; the message names the file and the problem."""


@dataclass
class Scenario:
    name: str
    objects: list[Obj] = field(default_factory=list)
    logs: list[Obj] = field(default_factory=list)  # PodLogs items
    timeline: list[Obj] = field(default_factory=list)  # steps of SimTimeline documents
    ignored: list[str] = field(default_factory=list)  # "apiVersion/kind" not served


def builtin_names() -> list[str]:
    root = importlib.resources.files("aetherius.sim") / "scenarios"
    return sorted(entry.name[:-5] for entry in root.iterdir() if entry.name.endswith(".yaml"))


def _read_text(source: str | Path) -> tuple[str, str]:
    path = Path(source)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    if isinstance(source, str) and "/" not in source and not source.endswith((".yaml", ".yml", ".json")):
        resource = importlib.resources.files("aetherius.sim") / "scenarios" / f"{source}.yaml"
        if resource.is_file():
            return resource.read_text(encoding="utf-8"), source
        known = ", ".join(builtin_names())
        raise ScenarioError(f"no scenario named {source!r} (built-in: {known}) and no such file")
    raise ScenarioError(f"scenario file {path} does not exist")


def _documents(text: str, origin: str) -> list[Any]:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return [orjson.loads(text)]
        except orjson.JSONDecodeError:
            pass  # YAML is a superset; let the YAML parser report the error
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{origin}: not valid JSON or YAML: {exc}") from None


def _flatten(doc: Any, origin: str) -> list[Obj]:
    if isinstance(doc, list):
        return [obj for item in doc for obj in _flatten(item, origin)]
    if not isinstance(doc, dict):
        raise ScenarioError(f"{origin}: expected objects, found {type(doc).__name__}")
    kind = str(doc.get("kind", ""))
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        item_kind = kind[: -len("List")] if kind != "List" else ""
        out = []
        for item in doc.get("items") or []:
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {"apiVersion": doc.get("apiVersion", "v1"), "kind": item_kind, **item}
            out.extend(_flatten(item, origin))
        return out
    return [doc]


def parse_scenario(text: str, *, origin: str = "<scenario>") -> Scenario:
    scenario = Scenario(name=origin)
    for doc in _documents(text, origin):
        for obj in _flatten(doc, origin):
            kind, api_version = str(obj.get("kind", "")), str(obj.get("apiVersion", ""))
            if kind == "PodLogs":
                scenario.logs.append(obj)
            elif kind == "SimTimeline":
                steps = obj.get("steps") or []
                if not isinstance(steps, list):
                    raise ScenarioError(f"{origin}: SimTimeline.steps must be a list")
                scenario.timeline.extend(steps)
            else:
                try:
                    resource_for(kind, api_version or None)
                except UnknownKind:
                    scenario.ignored.append(f"{api_version}/{kind}")
                    continue
                if not (obj.get("metadata") or {}).get("name"):
                    raise ScenarioError(f"{origin}: a {kind} without metadata.name")
                scenario.objects.append(obj)
    if not scenario.objects and not scenario.timeline:
        raise ScenarioError(f"{origin}: holds no objects")
    scenario.objects.sort(key=lambda obj: _ORDER.index(obj["kind"]) if obj["kind"] in _ORDER else len(_ORDER))
    return scenario


def load_scenario(source: str | Path) -> Scenario:
    """A built-in scenario by name (``"demo"``) or a file path."""
    text, origin = _read_text(source)
    return parse_scenario(text, origin=origin)
