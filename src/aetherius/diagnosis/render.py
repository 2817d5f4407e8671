"""Findings for machines (JSON, the contract's shape) and for people (grouped text)."""

from __future__ import annotations

from collections import defaultdict
from typing import IO

import msgspec
import orjson
from rich.console import Console
from rich.text import Text

from aetherius.diagnosis.model import SEVERITY_RANK, DiagnosisResult, Finding

__all__ = ["render_json", "render_text"]

_SHOWN_WARNINGS = 10  # a scan of a broken cluster can have hundreds; the JSON output keeps them all

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
_WORDS = {
    "OutOfMemory": "out of memory",
    "ApplicationError": "the application itself fails",
    "MissingConfiguration": "missing configuration",
    "DependencyUnavailable": "a dependency is unreachable",
    "InvalidCommand": "the command cannot run",
    "ImageNotFound": "the image does not exist",
    "RegistryAuthFailure": "the registry refuses the pull",
    "InsufficientResources": "not enough cluster resources",
    "SchedulingConstraint": "a scheduling rule matches no node",
    "VolumeProvisioningFailure": "the volume cannot be provisioned",
    "VolumeMountFailure": "the volume cannot be mounted",
    "ProbeFailure": "a health probe fails",
    "NodeFailure": "the node is failing",
    "SelectorMismatch": "the selector matches nothing",
    "MissingReference": "it points at something that does not exist",
    "QuotaExceeded": "a quota refuses it",
    "PermissionDenied": "permission denied",
    "Unknown": "cause not determined",
}


def render_json(result: DiagnosisResult) -> bytes:
    return orjson.dumps(msgspec.to_builtins(result), option=orjson.OPT_INDENT_2) + b"\n"


def _write_finding(console: Console, finding: Finding, *, indent: str, also: list[Finding]) -> None:
    line = Text(indent)
    line.append(f"{finding.severity.upper():8}", style=_STYLE[finding.severity])
    line.append(f" {finding.kind} {finding.name}", style="bold")
    if finding.container:
        line.append(f" [{finding.container}]")
    line.append(
        f"  {finding.reason}: {_WORDS.get(finding.root_cause, finding.root_cause)} ({finding.root_cause})"
    )
    console.print(line)
    console.print(Text(f"{indent}  {finding.summary}"))
    if also:
        names = ", ".join(f.name for f in also[:5]) + (f" and {len(also) - 5} more" if len(also) > 5 else "")
        console.print(Text(f"{indent}  also: {names}", style="dim"))
    for item in finding.evidence:
        console.print(Text(f"{indent}  · {item}", style="dim"))
    for rec in finding.recommendations:
        console.print(Text(f"{indent}  → {rec}", style="green"))
    console.print(Text(f"{indent}  runbook: {finding.runbook}", style="dim"))


def render_text(result: DiagnosisResult, *, file: IO[str] | None = None, color: bool | None = None) -> None:
    """Grouped by namespace, then by owning workload (owner first, its pods under it); pods of one
    workload failing for the same reason and cause are printed once."""
    console = Console(
        file=file, highlight=False, no_color=color is False, force_terminal=color or None, soft_wrap=True
    )
    header = (
        f"Aetherius diagnosis of {result.cluster or 'cluster'} ({result.source}) at {result.reference_time}"
    )
    console.print(Text(header, style="bold"))
    if not result.findings:
        console.print(Text("No problems found.", style="green"))
    by_ns: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for finding in result.findings:
        by_ns[finding.namespace][finding.group].append(finding)
    for namespace in sorted(by_ns):
        console.print()
        console.print(
            Text(f"namespace {namespace}" if namespace else "cluster-scoped", style="bold underline")
        )
        for group, items in sorted(
            by_ns[namespace].items(), key=lambda kv: (-max(SEVERITY_RANK[f.severity] for f in kv[1]), kv[0])
        ):
            kind, name = group.partition("/")[0], group.rsplit("/", 1)[-1]
            pods = [f for f in items if f.kind == "Pod"]
            own = [f for f in items if f.kind != "Pod"]
            console.print(
                Text(
                    f"{kind} {name}" + (f" — {len(pods)} pod finding(s)" if pods else ""),
                    style="bold",
                )
            )
            for finding in own:
                _write_finding(console, finding, indent="  ", also=[])
            shown: dict[tuple[str, str], list[Finding]] = defaultdict(list)
            for finding in pods:
                shown[(finding.reason, finding.root_cause)].append(finding)
            for same in shown.values():
                _write_finding(console, same[0], indent="    " if own else "  ", also=same[1:])
    counts: dict[str, int] = defaultdict(int)
    for finding in result.findings:
        counts[finding.severity] += 1
    console.print()
    summary = (
        ", ".join(f"{counts[s]} {s}" for s in ("critical", "warning", "info") if counts[s]) or "0 findings"
    )
    console.print(
        Text(
            f"{len(result.findings)} finding(s): {summary}; {len(result.warnings)} warning(s) while reading.",
            style="bold",
        )
    )
    for warning in result.warnings[:_SHOWN_WARNINGS]:
        console.print(Text(f"  warning: {warning}", style="yellow"))
    if len(result.warnings) > _SHOWN_WARNINGS:
        rest = len(result.warnings) - _SHOWN_WARNINGS
        console.print(Text(f"  … and {rest} more warning(s): -o json lists them all", style="yellow"))
