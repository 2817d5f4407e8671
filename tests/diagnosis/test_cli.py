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
    assert out.index("1. Deployment shop/api") < out.index("Pod shop/api-7d9f8c6b5-")
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


def _unreachable_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose API server refuses connections (nothing listens on the port)."""
    from tests.services import free_port

    path = tmp_path / "unreachable.kubeconfig"
    server = f"https://127.0.0.1:{free_port()}"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    return path


def test_an_unreachable_cluster_is_never_a_clean_bill_of_health(tmp_path: Path) -> None:
    kubeconfig = str(_unreachable_kubeconfig(tmp_path))
    for extra in ((), ("--fail-on", "warning"), ("-o", "json")):
        result = run("--kubeconfig", kubeconfig, *extra)
        assert result.returncode == 4, (extra, result.stdout, result.stderr)
        assert "No problems found" not in result.stdout and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: the cluster could not be read"), lines


def test_a_snapshot_of_an_unreachable_cluster_is_not_written(tmp_path: Path) -> None:
    out = tmp_path / "snap.json"
    kubeconfig = str(_unreachable_kubeconfig(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "aetherius", "snapshot", "-o", str(out), "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 4, result.stderr
    assert not out.exists() and "no snapshot written" in result.stderr and "wrote" not in result.stderr


def test_text_output_says_how_many_warnings_it_did_not_show(tmp_path: Path) -> None:
    items = [  # a spec of the wrong type: each pod skipped with one warning
        {"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "a"}, "spec": [], "status": "x"}
        for i in range(13)
    ]
    path = tmp_path / "many.json"
    path.write_bytes(orjson.dumps({"kind": "List", "items": items}))
    text = run("--snapshot", str(path))
    shown = [line for line in text.stdout.splitlines() if line.strip().startswith("warning:")]
    assert len(shown) == 10, text.stdout
    assert "… and 3 more warning(s): -o json lists them all" in text.stdout
    assert len(json.loads(run("--snapshot", str(path), "-o", "json").stdout)["warnings"]) == 13
