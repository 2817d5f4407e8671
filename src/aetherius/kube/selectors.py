"""Label and field selectors: the API server's grammar, checks and error messages, in one place.

Both sides of the read path evaluate selectors: the simulated API server filters its LISTs, and
the snapshot gateway filters a file's objects as a real server would. One parser serves both, so
they can never disagree about what a selector means.

Label: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a`` (exists), ``!a``.
Field: ``path=v``, ``path==v``, ``path!=v``; which paths a kind supports is the server's business.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FieldTerm",
    "LabelRequirement",
    "SelectorError",
    "field_matcher",
    "field_value",
    "label_matcher",
    "parse_field_terms",
    "parse_label_requirements",
]

_KEY = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SET_OP = re.compile(r"^(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")


class SelectorError(ValueError):
    """A selector the API server would refuse; the message is the server's."""


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    key: str
    op: str  # "=" | "!=" | "in" | "notin" | "exists" | "!exists"
    values: frozenset[str]

    def holds(self, labels: Mapping[str, Any]) -> bool:
        present = self.key in labels
        value = label_text(labels[self.key]) if present else None
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        return present if self.op == "exists" else not present


@dataclass(frozen=True, slots=True)
class FieldTerm:
    path: str
    negate: bool
    value: str

    def holds(self, obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, self.path) == self.value) != self.negate


def label_text(value: Any) -> str:
    """A label value as the server holds it: a string (a YAML ``true`` in a snapshot is "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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


def _check_key(key: str, selector: str) -> str:
    if not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise SelectorError(
            f"unable to parse requirement: invalid label key {key!r} in selector {selector!r}"
        )
    return key


def _check_value(value: str, selector: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(f"unable to parse requirement: invalid label value {value!r} in {selector!r}")
    return value


def _requirement(term: str, selector: str) -> LabelRequirement:
    if not term:
        raise SelectorError(f"unable to parse requirement: found '', expected: identifier in {selector!r}")
    set_op = _SET_OP.match(term)
    if set_op:
        values = frozenset(v.strip() for v in set_op["values"].split(",") if v.strip())
        for value in values:
            _check_value(value, selector)
        return LabelRequirement(_check_key(set_op["key"], selector), set_op["op"], values)
    for op in ("!=", "==", "="):
        if op in term:
            key, _, value = (part.strip() for part in term.partition(op))
            requirement_op = "!=" if op == "!=" else "="
            return LabelRequirement(
                _check_key(key, selector), requirement_op, frozenset([_check_value(value, selector)])
            )
    if term.startswith("!"):
        return LabelRequirement(_check_key(term[1:].strip(), selector), "!exists", frozenset())
    return LabelRequirement(_check_key(term, selector), "exists", frozenset())


def parse_label_requirements(selector: str | None) -> list[LabelRequirement]:
    """The requirements of a label selector; none for an empty one (it selects everything)."""
    if not selector or not selector.strip():
        return []
    return [_requirement(term, selector) for term in _split_top_level(selector)]


def label_matcher(selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over a labels mapping; ``None``/empty selects everything."""
    requirements = parse_label_requirements(selector)
    return lambda labels: all(requirement.holds(labels) for requirement in requirements)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string a field selector compares against; missing fields are ``""``."""
    if path == "source":  # core events: the source component
        return str((obj.get("source") or {}).get("component") or "")
    if path == "deprecatedSource":
        return str((obj.get("deprecatedSource") or {}).get("component") or "")
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if path == "status.podIPs" and isinstance(current, list):
        return ",".join(str(entry.get("ip", "")) for entry in current if isinstance(entry, Mapping))
    return label_text(current)


def parse_field_terms(selector: str | None) -> list[FieldTerm]:
    """The terms of a field selector; none for an empty one."""
    if not selector or not selector.strip():
        return []
    terms: list[FieldTerm] = []
    for term in _split_top_level(selector):
        for op in ("!=", "==", "="):
            if op in term:
                path, _, value = (part.strip() for part in term.partition(op))
                terms.append(FieldTerm(path, op == "!=", value))
                break
        else:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
    return terms


def field_matcher(selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over whole objects (``involvedObject.name=x,spec.nodeName!=n1``)."""
    terms = parse_field_terms(selector)
    return lambda obj: all(term.holds(obj) for term in terms)
