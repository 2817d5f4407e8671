"""``aetherius diagnose --snapshot``: the contract's JSON shape, text output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson

from tests.scenarios.library import ROOT

OOM = ROOT / "crashloop-oom" / "snapshot.yaml"
HEALTHY = ROOT / "healthy-lookalikes" / "snapshot.yaml"
CONTRACT_FIELDS = {
    "kind",
    "namespace",
    "name",
    "owner",
    "container",
    "reason",
    "root_cause",
    "severity",
    "summary",
    "evidence",
    "recommendations",
    "runbook",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aetherius", "diagnose", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_json_output_follows_the_contract() -> None:
    result = run("--snapshot", str(OOM), "--output", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["source"] == "snapshot" and isinstance(doc["cluster"], str) and doc["warnings"] == []
    pod = next(f for f in doc["findings"] if f["name"] == "api-7d9f8c6b5-x2k4q")
    assert set(pod) >= CONTRACT_FIELDS
    assert pod["owner"] == {"kind": "Deployment", "name": "api"}
    assert (pod["reason"], pod["root_cause"], pod["severity"], pod["container"]) == (
        "CrashLoopBackOff",
        "OutOfMemory",
        "critical",
        "api",
    )
    assert "lastState.terminated.reason=OOMKilled exitCode=137" in pod["evidence"]
    assert "limits.memory=256Mi" in pod["evidence"] and "event BackOff x41" in pod["evidence"]
    assert any("256Mi" in rec for rec in pod["recommendations"]) and pod["runbook"] == "oom-killed"


def test_text_output_groups_owner_first_without_colour_off_a_tty() -> None:
    result = run("--snapshot", str(OOM))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out
    assert out.index("Deployment api") < out.index("Pod api-7d9f8c6b5-")
    assert "also: " in out and "→ Raise resources.limits.memory" in out


def test_fail_on_gates() -> None:
    assert run("--snapshot", str(OOM), "--fail-on", "critical").returncode == 3
    assert run("--snapshot", str(OOM), "--fail-on", "warning").returncode == 3
    assert run("--snapshot", str(HEALTHY), "--fail-on", "warning").returncode == 0
    nodes = ROOT / "network" / "snapshot.yaml"
    assert (
        run("--snapshot", str(nodes), "-n", "shop", "-l", "app=nothing", "--fail-on", "critical").returncode
        == 0
    )


def test_namespace_and_selector_scope(tmp_path: Path) -> None:
    result = run("--snapshot", str(ROOT / "controllers" / "snapshot.yaml"), "-n", "ml", "-o", "json")
    names = {f["namespace"] for f in json.loads(result.stdout)["findings"]}
    assert names <= {"ml", ""} and "ml" in names
    result = run("--snapshot", str(ROOT / "network" / "snapshot.yaml"), "-l", "app=orders", "-o", "json")
    assert [f["name"] for f in json.loads(result.stdout)["findings"]] == ["orders-7c9d-x1y2z"]
    assert run("--snapshot", str(OOM), "-l", "app in (").returncode == 2


def test_bad_input_is_exit_2_with_one_line(tmp_path: Path) -> None:
    cases = {
        "missing.yaml": None,
        "truncated.json": orjson.dumps(
            {"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "a"}}]}
        )[:-9],
        "prose.txt": b"this is not a snapshot, just words\n",
        "binary.bin": bytes(range(256)),
        "empty-list.json": b'{"apiVersion": "v1", "kind": "List", "items": []}',
    }
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        result = run("--snapshot", str(path))
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, (
            result.stderr
        )


def test_malformed_objects_are_counted_warnings(tmp_path: Path) -> None:
    doc = {
        "kind": "List",
        "items": [
            {"kind": "Pod", "metadata": {"name": "no-status", "namespace": "a"}, "spec": {}},
            {
                "kind": "Pod",
                "metadata": {"name": "bad-types", "namespace": "a"},
                "spec": [],
                "status": "Running",
            },
            {
                "kind": "Pod",
                "metadata": {"name": "statuses", "namespace": "a"},
                "spec": {},
                "status": {"containerStatuses": "x"},
            },
            {
                "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "a"},
                "spec": {"replicas": "three"},
                "status": {},
            },
            {"kind": "Node", "metadata": {"name": "n"}},
            {"kind": "Pod", "spec": {}},
            {"kind": "Event", "metadata": {"name": "e", "namespace": "a"}, "involvedObject": "pod"},
        ],
    }
    path = tmp_path / "malformed.json"
    path.write_bytes(orjson.dumps(doc))
    result = run("--snapshot", str(path), "-o", "json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["findings"] == []
    assert len(out["warnings"]) == 7, out["warnings"]
