"""Label and field selectors with the real API server's grammar and error messages.

Label: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a`` (exists), ``!a``.
Field: ``path=v``, ``path==v``, ``path!=v`` over the fields each resource supports; any other
field is a 400, as on a real cluster (clients must not believe an unsupported filter worked).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aetherius.sim.errors import ApiError, bad_request
from aetherius.sim.resources import ResourceType

Matcher = Callable[[dict[str, Any]], bool]

_KEY = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SET_OP = re.compile(r"^(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( … )``."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _check_key(key: str, selector: str) -> None:
    if not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise bad_request(f"unable to parse requirement: invalid label key {key!r} in selector {selector!r}")


def _check_value(value: str, selector: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise bad_request(f"unable to parse requirement: invalid label value {value!r} in {selector!r}")


def _requirement(term: str, selector: str) -> Callable[[dict[str, str]], bool]:
    set_op = _SET_OP.match(term)
    if set_op:
        key = set_op["key"]
        _check_key(key, selector)
        values = frozenset(v.strip() for v in set_op["values"].split(",") if v.strip())
        for value in values:
            _check_value(value, selector)
        if set_op["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, _, value = (part.strip() for part in term.partition(op))
            _check_key(key, selector)
            _check_value(value, selector)
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: key in labels and labels[key] == value
    if term.startswith("!"):
        key = term[1:].strip()
        _check_key(key, selector)
        return lambda labels: key not in labels
    _check_key(term, selector)
    return lambda labels: term in labels


def parse_label_selector(selector: str | None) -> Matcher | None:
    """A predicate over objects, or None when the selector selects everything."""
    if not selector or not selector.strip():
        return None
    requirements = []
    for term in _split_top_level(selector):
        if not term:
            raise bad_request(f"unable to parse requirement: found '', expected: identifier in {selector!r}")
        requirements.append(_requirement(term, selector))

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string a field selector compares against; missing fields are ``""``."""
    if path == "source":  # core events: the source component
        return str((obj.get("source") or {}).get("component") or "")
    if path == "deprecatedSource":
        return str((obj.get("deprecatedSource") or {}).get("component") or "")
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    if path == "status.podIPs" and isinstance(current, list):
        return ",".join(str(entry.get("ip", "")) for entry in current if isinstance(entry, dict))
    return str(current)


def parse_field_selector(selector: str | None, rt: ResourceType) -> Matcher | None:
    if not selector or not selector.strip():
        return None
    terms: list[tuple[str, bool, str]] = []
    for term in _split_top_level(selector):
        for op in ("!=", "==", "="):
            if op in term:
                path, _, value = (part.strip() for part in term.partition(op))
                break
        else:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        if path not in rt.field_selectors:
            if rt.fields:
                raise bad_request(f"field label not supported: {path}")
            allowed = ", ".join(f'"{name}"' for name in rt.field_selectors)
            raise ApiError(
                code=400,
                reason="BadRequest",
                message=f'"{path}" is not a known field selector: only {allowed}',
            )
        terms.append((path, op == "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((field_value(obj, path) == value) != negate for path, negate, value in terms)

    return matches


def combine(*matchers: Matcher | None) -> Matcher | None:
    active = [matcher for matcher in matchers if matcher is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]
    return lambda obj: all(matcher(obj) for matcher in active)
