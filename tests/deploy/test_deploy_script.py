"""deploy-to-cluster.sh: syntax, the dry run's commands and manifests, and a refused cluster id."""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.deploy.rendering import MANIFESTS, ROOT, parse_documents
from tests.deploy.test_validation import validate

SCRIPT = ROOT / "deploy" / "deploy-to-cluster.sh"


@functools.cache
def _bin_without_kubectl() -> str:
    """A PATH holding the tools the script uses but no kubectl: proves the dry run never calls it."""
    tools = Path(tempfile.mkdtemp(prefix="aetherius-deploy-bin-"))
    atexit.register(shutil.rmtree, tools, ignore_errors=True)
    for tool in ("bash", "dirname", "grep", "sed", "cat", "mktemp", "chmod", "rm"):
        found = shutil.which(tool)
        assert found, tool
        link = tools / tool
        if not link.exists():
            link.symlink_to(found)
    return str(tools)


def run_script(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash
    env = {"PATH": _bin_without_kubectl(), "HOME": "/nonexistent", **(extra_env or {})}
    return subprocess.run(
        [bash, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def heredoc(output: str, tag: str) -> str:
    match = re.search(rf"<<{tag}\n(.*?)\n{tag}\n", output, re.DOTALL)
    assert match, output
    return match.group(1)


def test_the_script_parses() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert os.access(SCRIPT, os.X_OK)


def test_dry_run_injects_the_cluster_id_and_applies_everything_in_order() -> None:
    result = run_script("--dry-run", "prod-us-west-2", "/clusters/prod.kubeconfig")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    configmap = parse_documents(heredoc(out, "CONFIGMAP"))
    assert len(configmap) == 1
    validate(configmap[0])
    assert configmap[0]["data"]["cluster_id"] == "prod-us-west-2"
    assert "watcher.yaml" in configmap[0]["data"] and "app.yaml" in configmap[0]["data"]
    applied = re.findall(r"apply -f \S+/manifests/(\S+)", out)
    assert applied == [
        "01-namespace.yaml", "02-serviceaccount.yaml", "03-clusterrole.yaml", "04-clusterrolebinding.yaml",
        "06-deployment.yaml", "07-service.yaml", "09-networkpolicy.yaml", "10-orchestrator-deployment.yaml",
        "11-orchestrator-service.yaml", "12-api-deployment.yaml", "13-api-service.yaml", "08-servicemonitor.yaml",
    ]  # fmt: skip
    every_file = {p.name for p in MANIFESTS.glob("[0-9][0-9]-*.yaml")}
    assert set(applied) | {"05-configmap.yaml"} == every_file
    assert all(
        "--kubeconfig=/clusters/prod.kubeconfig" in line
        for line in out.splitlines()
        if line.startswith("+ kubectl")
    )
    for name in ("aetherius-event-watcher", "aetherius-orchestrator", "aetherius-api"):
        assert f"rollout status deployment/{name} --timeout=5m" in out
    assert "auth can-i list pods --as=system:serviceaccount:aetherius-system:aetherius-event-watcher" in out


@pytest.mark.parametrize(
    "cluster_id",
    [
        'x"; rm -rf /',
        "$(id)",
        "a/b",
        "prod&1",
        "Prod",
        "-lead",
        "trail-",
        "a" * 64,
        "",
        "a b",
        'x"\ncluster_id: "y',
    ],
)
def test_a_malicious_or_invalid_cluster_id_is_refused(cluster_id: str) -> None:
    result = run_script("--dry-run", cluster_id)
    assert result.returncode == 2
    assert "invalid cluster id" in result.stderr
    assert "kubectl" not in result.stdout


def test_usage_errors() -> None:
    assert run_script().returncode == 2
    assert run_script("--dry-run").returncode == 2
    assert "Usage:" in run_script("a", "b", "c").stderr


def test_secret_values_are_never_printed() -> None:
    result = run_script(
        "--dry-run",
        "prod",
        extra_env={
            "AETHERIUS_DATABASE_URL": "postgresql://app:S3cr3tPw@db:5432/a",
            "AETHERIUS_REDIS_URL": "redis://:R3disPw@r:6379/0",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "create secret generic aetherius-secrets" in result.stdout
    assert "S3cr3tPw" not in result.stdout + result.stderr
    assert "R3disPw" not in result.stdout + result.stderr
    without = run_script("--dry-run", "prod")
    assert "create secret" not in without.stdout
    assert "AETHERIUS_DATABASE_URL is not set" in without.stdout


def test_without_dry_run_a_missing_kubectl_is_a_clear_error() -> None:
    result = run_script("prod")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: kubectl not found"
