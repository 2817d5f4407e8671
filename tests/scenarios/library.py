"""The scenario library: ``<name>/snapshot.yaml`` (a cluster's state) and ``<name>/expected.json``
(exactly the findings it must produce — a healthy look-alike expects ``[]``).

Optional: ``warnings.txt`` (exactly the warnings it must produce, one per line) and
``snapshot-only`` (why the scenario cannot be served live: a snapshot captured without some kinds,
logs of running pods that a live scan does not read), which keeps it out of the live comparison."""

from __future__ import annotations

import json
from pathlib import Path

from aetherius.diagnosis.model import DiagnosisResult

ROOT = Path(__file__).parent
KEYS = ("kind", "namespace", "name", "reason", "root_cause", "severity")
Row = tuple[str, str, str, str, str, str]


def scenario_names() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if (p / "snapshot.yaml").is_file())


def live_scenario_names() -> list[str]:
    return [name for name in scenario_names() if not (ROOT / name / "snapshot-only").is_file()]


def expected_warnings(name: str) -> list[str]:
    path = ROOT / name / "warnings.txt"
    return path.read_text().splitlines() if path.is_file() else []


def expected(name: str) -> set[Row]:
    rows = json.loads((ROOT / name / "expected.json").read_text())
    return {tuple(str(row[key]) for key in KEYS) for row in rows}  # type: ignore[misc]


def observed(result: DiagnosisResult) -> set[Row]:
    return {(f.kind, f.namespace, f.name, f.reason, f.root_cause, f.severity) for f in result.findings}
