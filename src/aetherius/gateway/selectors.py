"""Label and field selectors, evaluated the way the API server does, for the snapshot backend."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SelectorError", "field_matcher", "label_matcher"]

_SET = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:\s(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")

# (key, operator, values): operator is one of = != in notin exists !exists
Requirement = tuple[str, str, frozenset[str]]


class SelectorError(ValueError):
    """A selector that does not parse."""


def _split(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def _parse_labels(selector: str) -> list[Requirement]:
    out: list[Requirement] = []
    for part in _split(selector):
        eq = _EQ.match(part)
        if eq:
            key, op, value = eq.groups()
            out.append((key, "!=" if op == "!=" else "=", frozenset([value])))
            continue
        st = _SET.match(part)
        if not st:
            raise SelectorError(f"bad label selector {selector!r} near {part.strip()!r}")
        negate, key, op, values = st.groups()
        if op:
            out.append((key, op, frozenset(v.strip() for v in values.split(",") if v.strip())))
        else:
            out.append((key, "!exists" if negate else "exists", frozenset()))
    return out


def _holds(req: Requirement, value: Any, present: bool) -> bool:
    _, op, values = req
    if op == "=" or op == "in":
        return present and value in values
    if op == "!=" or op == "notin":
        return not present or value not in values
    if op == "exists":
        return present
    return not present


def label_matcher(selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over a labels mapping; ``None``/empty selects everything."""
    reqs = _parse_labels(selector) if selector and selector.strip() else []

    def matches(labels: Mapping[str, Any]) -> bool:
        return all(_holds(req, labels.get(req[0]), req[0] in labels) for req in reqs)

    return matches


def _path(obj: Mapping[str, Any], dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def field_matcher(selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """Equality/inequality field selectors (``involvedObject.name=x,spec.nodeName!=n1``)."""
    reqs: list[Requirement] = []
    for part in (selector or "").split(","):
        if not part.strip():
            continue
        eq = _EQ.match(part)
        if not eq:
            raise SelectorError(f"bad field selector {selector!r} near {part.strip()!r}")
        key, op, value = eq.groups()
        reqs.append((key, "!=" if op == "!=" else "=", frozenset([value])))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all(_holds(req, str(_path(obj, req[0]) or ""), True) for req in reqs)

    return matches
