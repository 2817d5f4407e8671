"""What every analyzer receives: the index, the reference time, the logs read, and a finding maker."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from aetherius.diagnosis.index import Ev, Index, Malformed, age_seconds
from aetherius.diagnosis.model import Finding, Owner, Severity
from aetherius.gateway.redact import scrub_text

__all__ = [
    "SECRETS_NOT_CHECKED",
    "Context",
    "LogText",
    "format_quantity",
    "parse_quantity",
    "secret_check",
    "unchecked",
]

Obj = dict[str, Any]
Verdict = TypeVar("Verdict")

# Graces and windows: a problem younger than these is "still starting", not a finding.
STARTUP_GRACE_S = 300.0
RECENT_RESTART_S = 3600.0
PENDING_CLAIM_GRACE_S = 120.0
GATED_GRACE_S = 600.0


@dataclass(frozen=True, slots=True)
class LogText:
    text: str
    pod: str
    previous: bool

    def label(self, for_pod: str) -> str:
        instance = "previous instance" if self.previous else "current instance"
        sibling = "" if self.pod == for_pod else f" of sibling pod {self.pod}"
        return f"log ({instance}{sibling})"


@dataclass
class Context:
    index: Index
    now: datetime
    # (namespace, pod, container) → the log read for it; (group, container) → one for the group.
    logs: dict[tuple[str, str, str], LogText] = field(default_factory=dict)
    group_logs: dict[tuple[str, str], LogText] = field(default_factory=dict)
    # Current logs of containers that did not crash (a snapshot carries them): see analyzers/logs.
    running_logs: dict[tuple[str, str, str], LogText] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Findings of pods by owner group, for workload analyzers to name their cause.
    by_group: dict[str, list[Finding]] = field(default_factory=dict)
    # Values derived from the whole state once per scan (e.g. the largest node's allocatable).
    memo: dict[str, Any] = field(default_factory=dict)
    # NB: per scan, never process-wide: its keys are unscrubbed text (pods of a workload repeat lines).
    scrubbed: dict[str, str] = field(default_factory=dict, repr=False)
    # Per scan, like ``scrubbed``: a classifier's verdict per message, the age of a time stamp.
    verdicts: dict[Callable[[str], Any], dict[str, Any]] = field(default_factory=dict, repr=False)
    ages: dict[str, float | None] = field(default_factory=dict, repr=False)

    def age(self, stamp: Any) -> float | None:
        """Seconds from ``stamp`` to ``now``; the pods of a workload share their stamps."""
        if not isinstance(stamp, str):
            return age_seconds(stamp, self.now)
        ages = self.ages
        if stamp in ages:
            return ages[stamp]
        age = ages[stamp] = age_seconds(stamp, self.now)
        return age

    def classified(self, classify: Callable[[str], Verdict], text: str) -> Verdict:
        """``classify(text)``, once per distinct text per scan (a workload's pods repeat messages).

        NB: verdicts are shared between the pods that asked: callers read them, never change them.
        """
        memo = self.verdicts.get(classify)
        if memo is None:
            memo = self.verdicts[classify] = {}
        if text in memo:
            found: Verdict = memo[text]
            return found
        found = memo[text] = classify(text)
        return found

    def part(self, obj: Obj, name: str, *, kind: str) -> Obj:
        """``obj[name]`` (spec or status) as a dict; missing or mistyped, an empty one and a warning.

        A partial object (the minimal fixtures other tools test with, a hand-trimmed snapshot) is
        diagnosed on what it carries; only an object with neither a spec nor a status is malformed.
        """
        value = obj.get(name)
        if isinstance(value, dict):
            return value
        if not any(isinstance(obj.get(other), dict) for other in ("spec", "status") if other != name):
            raise Malformed("neither spec nor status")
        metadata = obj.get("metadata") or {}
        where = "/".join(str(x) for x in (metadata.get("namespace"), metadata.get("name")) if x)
        problem = f"no {name}" if value is None else f"{name} is a {type(value).__name__}"
        warning = f"{kind} {where}: {problem}; diagnosed from what it carries"
        if warning not in self.warnings:
            self.warnings.append(warning)
        return {}

    def log_for(self, namespace: str, pod: str, container: str, group: str) -> LogText | None:
        return self.logs.get((namespace, pod, container)) or self.group_logs.get((group, container))

    def scrub(self, text: str) -> str:
        """``scrub_text``, once per distinct string per scan (pods of a workload repeat lines)."""
        done = self.scrubbed.get(text)
        if done is None:
            done = self.scrubbed[text] = scrub_text(text)
        return done

    def _scrub_all(self, lines: list[str]) -> list[str]:
        # NB: runs for every line of every finding; most lines were seen before in this scan.
        known = self.scrubbed.get
        return [done if (done := known(line)) is not None else self.scrub(line) for line in lines]

    def finding(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        reason: str,
        root_cause: str,
        severity: Severity,
        summary: str,
        evidence: list[str],
        recommendations: list[str],
        owner: Owner | None = None,
        container: str | None = None,
        group: str = "",
    ) -> Finding:
        # NB: the one exit of object text from a diagnosis: analyzers read the analysis view
        # unredacted (see aetherius.gateway.base), so every string is scrubbed here.
        return Finding(
            kind=kind,
            namespace=namespace,
            name=name,
            reason=reason,
            root_cause=root_cause,
            severity=severity,
            summary=self.scrub(summary),
            evidence=[line[:400] for line in self._scrub_all(evidence)],
            recommendations=self._scrub_all(recommendations),
            owner=owner,
            container=container,
            group=group or f"{kind}/{namespace}/{name}",
        )


SECRETS_NOT_CHECKED = "Secret existence not checked: no RBAC by design"


def secret_check(ctx: Context, namespace: str, name: str) -> str:
    """The evidence line on a referenced Secret: what the state says, or that it was not read.

    Live, Secrets are not read by default (no RBAC for them at all); a finding about one then
    rests on the kubelet's or the controller's own words, and says so.
    """
    if not ctx.index.has("Secret"):
        return SECRETS_NOT_CHECKED
    if ctx.index.get("Secret", namespace, name) is None:
        return f"no Secret named {name} in namespace {namespace} (Secrets' metadata checked)"
    return f"Secret {name} exists in namespace {namespace} (Secrets' metadata checked)"


def unchecked(kind: str, namespace: str, name: str) -> str:
    """The evidence line for a reference to a kind the state does not hold (a partial snapshot, a
    read that was refused): what could not be checked, and the command that checks it."""
    where = f" -n {namespace}" if namespace else ""
    return (
        f"{kind} {name} not checked: the state holds no {kind} objects "
        f"(check: kubectl get {kind.lower()}{where} {name})"
    )


def event_lines(events: list[Ev], *reasons: str, limit: int = 2) -> list[str]:
    chosen = [ev for ev in events if ev.reason in reasons]
    chosen.sort(key=lambda ev: ev.last, reverse=True)
    return [ev.line() for ev in chosen[:limit]]


def event_count(events: list[Ev], reason: str, contains: str = "") -> int:
    return sum(ev.count for ev in events if ev.reason == reason and contains in ev.message)


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
}


def parse_quantity(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if not match or match.group(2) not in _SUFFIX:
        return None
    try:
        return float(match.group(1)) * _SUFFIX[match.group(2)]
    except ValueError:
        return None


def format_quantity(value: float, *, memory: bool) -> str:
    if not memory:
        return f"{round(value * 1000)}m" if value < 10 else f"{value:g}"
    for suffix in ("Gi", "Mi", "Ki"):
        unit = _SUFFIX[suffix]
        if value >= unit:
            return f"{round(value / unit)}{suffix}" if value / unit >= 10 else f"{value / unit:.1f}{suffix}"
    return f"{int(value)}"
