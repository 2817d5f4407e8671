"""Label and field selectors as the real API server applies them to a LIST or WATCH.

The grammar, checks and messages are ``aetherius.kube.selectors`` (shared with the snapshot
gateway); here a bad selector becomes the server's 400, and a field the resource does not
support is refused, as on a real cluster (clients must not believe an unsupported filter worked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aetherius.kube.selectors import SelectorError, parse_field_terms, parse_label_requirements
from aetherius.sim.errors import ApiError, bad_request
from aetherius.sim.resources import ResourceType

Matcher = Callable[[dict[str, Any]], bool]


def parse_label_selector(selector: str | None) -> Matcher | None:
    """A predicate over objects, or None when the selector selects everything."""
    try:
        requirements = parse_label_requirements(selector)
    except SelectorError as exc:
        raise bad_request(str(exc)) from None
    if not requirements:
        return None

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement.holds(labels) for requirement in requirements)

    return matches


def parse_field_selector(selector: str | None, rt: ResourceType) -> Matcher | None:
    try:
        terms = parse_field_terms(selector)
    except SelectorError as exc:
        raise bad_request(str(exc)) from None
    if not terms:
        return None
    for term in terms:
        if term.path not in rt.field_selectors:
            if rt.fields:
                raise bad_request(f"field label not supported: {term.path}")
            allowed = ", ".join(f'"{name}"' for name in rt.field_selectors)
            raise ApiError(
                code=400,
                reason="BadRequest",
                message=f'"{term.path}" is not a known field selector: only {allowed}',
            )
    return lambda obj: all(term.holds(obj) for term in terms)


def combine(*matchers: Matcher | None) -> Matcher | None:
    active = [matcher for matcher in matchers if matcher is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]
    return lambda obj: all(matcher(obj) for matcher in active)
