"""``aetherius run --kubeconfig K --context alpha --context beta``, as a person starts it: one
process, two clusters (two contexts of one kubeconfig), a warning on stdout for the context whose
user could write, and both clusters listed by the API it serves.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import yaml

from aetherius.sim import SimCluster
from tests.compose.clusters import checkout_only, demo_variant, fresh_uid, without_checkout
from tests.orchestrator.test_run_demo import DASHBOARD, TOKEN, Cli

WRITER_RULES = [{"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"]}]


def two_contexts(path: Path, *, alpha: str, beta: str) -> Path:
    """One kubeconfig, two contexts: ``alpha`` (a user who may write) and ``beta`` (read-only)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "alpha", "cluster": {"server": alpha}},
            {"name": "beta", "cluster": {"server": beta}},
        ],
        "users": [
            {"name": "alpha-admin", "user": {"token": "writer"}},
            {"name": "beta-reader", "user": {"token": "aetherius-sim-token"}},
        ],
        "contexts": [
            {"name": "alpha", "context": {"cluster": "alpha", "user": "alpha-admin"}},
            {"name": "beta", "context": {"cluster": "beta", "user": "beta-reader"}},
        ],
        "current-context": "alpha",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _clusters(url: str, token: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/v1/clusters", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return {c["id"]: c for c in response.json()}


async def test_run_with_two_contexts(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    for name in (
        "KUBECONFIG",
        "AETHERIUS_CONFIG",
        "AETHERIUS_DATABASE_URL",
        "AETHERIUS_BUS_URL",
        "CLUSTER_ID",
    ):
        env.pop(name, None)
    alpha_uid, beta_uid = fresh_uid(), fresh_uid()
    async with (
        SimCluster(demo_variant(without_checkout, uid=alpha_uid), speed=50) as alpha,
        SimCluster(demo_variant(checkout_only, uid=beta_uid), speed=50) as beta,
    ):
        alpha.grant("writer", WRITER_RULES)
        kubeconfig = two_contexts(tmp_path / "kubeconfig", alpha=alpha.url, beta=beta.url)
        args = (
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--context",
            "alpha",
            "--context",
            "beta",
            "--port",
            "0",
        )
        cli = Cli.start(*args, env=env)
        try:
            url = await asyncio.to_thread(cli.wait_for, DASHBOARD)
            token = await asyncio.to_thread(cli.wait_for, TOKEN)
            ids = {f"cluster-{alpha_uid[:8]}", f"cluster-{beta_uid[:8]}"}
            listed: dict[str, Any] = {}
            for _ in range(300):
                listed = await asyncio.to_thread(_clusters, url, token)
                if ids <= set(listed) and all(listed[i]["watcher_status"] == "ok" for i in ids):
                    break
                await asyncio.sleep(0.2)
            assert ids <= set(listed), f"{listed}\n{cli.output()[-3000:]}"
            assert {listed[i]["detected_by"] for i in ids} == {"namespace_uid"}
        finally:
            code = await asyncio.to_thread(cli.stop)
    assert code == 0, cli.output()[-4000:]
    warnings = [line for line in cli.lines if line.startswith("Warning:")]
    assert len(warnings) == 1, cli.output()[-4000:]
    assert f"cluster-{alpha_uid[:8]}" in warnings[0] and "(context alpha)" in warnings[0]
    assert "* on deployments.apps in default" in warnings[0]


def test_two_contexts_naming_the_same_cluster_is_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("CLUSTER_ID", None)
    with SimCluster.start_in_thread("demo") as one, SimCluster.start_in_thread("demo") as two:
        kubeconfig = two_contexts(tmp_path / "kubeconfig", alpha=one.url, beta=two.url)
        contexts = ("--context", "alpha", "--context", "beta")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "aetherius",
                "run",
                "--kubeconfig",
                str(kubeconfig),
                *contexts,
                "--port",
                "0",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "are both cluster 'cluster-91a9994f'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
