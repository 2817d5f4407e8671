"""Findings for machines (JSON, the contract's shape) and for people (grouped text)."""

from __future__ import annotations

from collections import defaultdict
from typing import IO

import msgspec
import orjson
from rich.console import Console
from rich.text import Text

from aetherius.diagnosis.chains import root_of
from aetherius.diagnosis.model import CAUSE_WORDS, SEVERITY_RANK, DiagnosisResult, Finding

__all__ = ["problems", "render_json", "render_text"]

_SHOWN_WARNINGS = 10  # a scan of a broken cluster can have hundreds; the JSON output keeps them all

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def render_json(result: DiagnosisResult) -> bytes:
    return orjson.dumps(msgspec.to_builtins(result), option=orjson.OPT_INDENT_2) + b"\n"


def _write_finding(console: Console, finding: Finding, *, indent: str, also: list[Finding]) -> None:
    line = Text(indent)
    line.append(f"{finding.severity.upper():8}", style=_STYLE[finding.severity])
    where = f"{finding.namespace}/{finding.name}" if finding.namespace else finding.name
    line.append(f" {finding.kind} {where}", style="bold")
    if finding.container:
        line.append(f" [{finding.container}]")
    line.append(
        f"  {finding.reason}: {CAUSE_WORDS.get(finding.root_cause, finding.root_cause)} ({finding.root_cause})"
    )
    console.print(line)
    console.print(Text(f"{indent}  {finding.summary}"))
    if also:
        names = ", ".join(f.name for f in also[:5]) + (f" and {len(also) - 5} more" if len(also) > 5 else "")
        console.print(Text(f"{indent}  also: {names}", style="dim"))
    for item in finding.evidence:
        console.print(Text(f"{indent}  · {item}"))
    for rec in finding.recommendations:
        console.print(Text(f"{indent}  → {rec}", style="green"))
    console.print(Text(f"{indent}  runbook: {finding.runbook}", style="dim"))


class _Problem:
    """A root finding (with the pods of its workload that fail alike) and what follows from it."""

    def __init__(self, root: Finding) -> None:
        self.root = root
        self.also: list[Finding] = []
        self.below: dict[tuple[str, str, str, str], list[Finding]] = defaultdict(list)

    def count(self) -> int:
        return 1 + len(self.also) + sum(len(items) for items in self.below.values())


def problems(findings: list[Finding]) -> list[_Problem]:
    """Findings as problems: each root (a finding nothing else explains) with its chain under it.

    Pods of one workload failing for the same reason and cause are one root ("also: …").
    """
    by_key = {f.key(): f for f in findings}
    out: dict[tuple[str, ...], _Problem] = {}
    for finding in findings:
        if root_of(finding, by_key) is not finding:
            continue
        same = (finding.group, finding.reason, finding.root_cause) if finding.kind == "Pod" else finding.key()
        if same in out:
            out[same].also.append(finding)
        else:
            out[same] = _Problem(finding)
    owner = {p.root.key(): p for p in out.values()} | {f.key(): p for p in out.values() for f in p.also}
    for finding in findings:
        link = finding.caused_by
        root = root_of(finding, by_key)
        if link is None or root is finding:
            continue
        problem = owner.get(root.key())
        if problem is not None:
            problem.below[(link.kind, link.namespace, link.name, link.reason)].append(finding)
    return sorted(
        out.values(),
        key=lambda p: (
            -SEVERITY_RANK[p.root.severity],
            -p.count(),
            p.root.namespace,
            p.root.group,
            p.root.name,
        ),
    )


def _write_below(
    console: Console, problem: _Problem, key: tuple[str, str, str, str], *, depth: int, seen: set[int]
) -> None:
    children = problem.below.get(key, [])
    shown: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
    for child in children:
        shown[(child.group if child.kind == "Pod" else child.key()[2], child.kind, child.reason)].append(
            child
        )
    for same in shown.values():
        first = same[0]
        if id(first) in seen:
            continue
        seen.add(id(first))
        where = f"{first.namespace}/{first.name}" if first.namespace else first.name
        more = f" (+{len(same) - 1} like it)" if len(same) > 1 else ""
        indent = "       " + "  " * depth
        console.print(
            Text(
                f"{indent}← {first.kind} {where}{more}  {first.reason}: {first.summary}",
                style="dim" if depth else "",
            )
        )
        for child in same:
            _write_below(console, problem, child.key(), depth=depth + 1, seen=seen)


def render_text(result: DiagnosisResult, *, file: IO[str] | None = None, color: bool | None = None) -> None:
    """One block per problem, the root first (what broke, its evidence, what to do), then what it
    affects as a chain under it; the count of problems before them. Wrapped on a terminal."""
    console = Console(file=file, highlight=False, no_color=color is False, force_terminal=color or None)
    console.soft_wrap = not console.is_terminal  # NB: files and pipes keep one line per line (grep)
    header = (
        f"Aetherius diagnosis of {result.cluster or 'cluster'} ({result.source}) at {result.reference_time}"
    )
    console.print(Text(header, style="bold"))
    found = problems(result.findings)
    counts: dict[str, int] = defaultdict(int)
    for problem in found:
        counts[problem.root.severity] += 1
    summary = ", ".join(f"{counts[s]} {s}" for s in ("critical", "warning", "info") if counts[s])
    if not result.findings:
        console.print(Text("No problems found.", style="green"))
    else:
        console.print(
            Text(
                f"{len(found)} problem(s): {summary} — {len(result.findings)} finding(s); "
                f"{len(result.warnings)} warning(s) while reading.",
                style="bold",
            )
        )
    for number, problem in enumerate(found, start=1):
        console.print()
        root = problem.root
        owner = f"{root.owner.kind} {root.namespace}/{root.owner.name}" if root.owner else ""
        title = owner or (
            f"{root.kind} {root.namespace}/{root.name}" if root.namespace else f"{root.kind} {root.name}"
        )
        console.print(
            Text(f"{number}. {title} — {CAUSE_WORDS.get(root.root_cause, root.root_cause)}", style="bold")
        )
        _write_finding(console, root, indent="   ", also=problem.also)
        affected = problem.count() - 1 - len(problem.also)
        if affected:
            console.print(Text(f"     affects {affected}:", style="bold"))
            seen: set[int] = set()
            for root in (problem.root, *problem.also):
                _write_below(console, problem, root.key(), depth=0, seen=seen)
    if result.warnings:
        console.print()
    for warning in result.warnings[:_SHOWN_WARNINGS]:
        console.print(Text(f"  warning: {warning}", style="yellow"))
    if len(result.warnings) > _SHOWN_WARNINGS:
        rest = len(result.warnings) - _SHOWN_WARNINGS
        console.print(Text(f"  … and {rest} more warning(s): -o json lists them all", style="yellow"))
