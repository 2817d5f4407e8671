"""``aetherius demo`` and ``aetherius run`` as a person starts them: subprocesses, real HTTP.

The demo needs nothing but itself: its sim plays the six failures, and the API it serves must
show exactly one incident per failure with the right root cause and a report with evidence.
``aetherius run`` keeps its SQLite file under ``$XDG_DATA_HOME/aetherius`` across restarts and
prints the first admin token once.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aetherius.sim import SimCluster

EXPECTED = {
    ("shop", "checkout"): "OutOfMemory",
    ("shop", "frontend"): "ImageNotFound",
    ("analytics", "report-builder"): "InsufficientResources",
    ("shop", "payments"): "MissingConfiguration",
    ("web", "blog"): "ProbeFailure",
    ("shop", "orders"): "DependencyUnavailable",
}
TOKEN = re.compile(r"First admin token \(shown once, store it now\): (\S+)")
DASHBOARD = re.compile(r"Aetherius dashboard: (http://\S+)")


@dataclass
class Cli:
    """A running ``aetherius`` command whose stdout is read line by line in the background."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, *args: str, env: dict[str, str]) -> Cli:
        process = subprocess.Popen(
            [sys.executable, "-m", "aetherius", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        cli = cls(process)
        threading.Thread(target=cli._read, daemon=True).start()
        return cli

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], *, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := pattern.search(line):
                    return match.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern.pattern!r} never printed:\n{self.output()[-4000:]}")

    def stop(self, *, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"did not stop within {timeout}s on SIGTERM:\n{self.output()[-4000:]}"
            ) from None


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    values = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    for name in ("KUBECONFIG", "AETHERIUS_CONFIG", "AETHERIUS_DATABASE_URL", "AETHERIUS_BUS_URL"):
        values.pop(name, None)
    return values


def incidents(url: str, token: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/incidents?limit=200", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def wait_for_incidents(
    url: str, token: str, *, want: int, cli: Cli, timeout: float = 90
) -> list[dict[str, Any]]:
    """``want`` incidents, each with a report that names a root cause.

    NB: a report made too early says Unknown and the next crash of the workload re-diagnoses it:
    what a person is promised is the root cause once the evidence is there, not at the first look.
    """
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = incidents(url, token)
        if len(found) >= want and all(
            i["report_version"] >= 1 and i["root_cause"] not in ("", "Unknown") for i in found
        ):
            return found
        time.sleep(0.5)
    raise AssertionError(f"incidents: {found}\n{cli.output()[-4000:]}")


def clusters(url: str, token: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/clusters", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    listed: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
    return listed


def assert_cluster_registered(url: str, token: str, *, cluster_id: str, method: str, cli: Cli) -> None:
    """The cluster is listed, seen within seconds, with its detection and its watcher's health."""
    deadline = time.monotonic() + 30
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [c for c in clusters(url, token) if c["id"] == cluster_id]
        if found and found[0]["watcher_health"].get("initial_list_done"):
            break
        time.sleep(0.3)
    assert found, f"clusters: {clusters(url, token)}\n{cli.output()[-3000:]}"
    cluster = found[0]
    assert cluster["detected_by"] == method
    seen = datetime.fromisoformat(cluster["last_seen"])
    assert datetime.now(UTC) - seen < timedelta(seconds=30), cluster
    health = cluster["watcher_health"]
    assert health["initial_list_done"] is True and health["status"] == "ok", health
    assert datetime.fromisoformat(health["last_progress"]) <= datetime.now(UTC)
    with httpx.Client(base_url=url) as browser:
        form = browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        browser.post("/login", data={"token": token, "csrf_token": csrf.group(1), "next": "/"})
        overview = browser.get("/")
    assert overview.status_code == 200
    assert "No cluster has reported yet" not in overview.text
    assert f"<strong>{cluster['name']}</strong>" in overview.text and "healthy" in overview.text


def by_workload(found: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {(i["namespace"], i["owner_name"] or i["object_name"]): i["root_cause"] for i in found}


PRINTED = re.compile(r"^Incident #\d+: \S+ in \S+ (\S+)/(\S+) — root cause (\S+) \(")


def test_demo_shows_each_failure_once_with_its_root_cause_then_exits(env: dict[str, str]) -> None:
    # NB: port 0: the demo listens on a port the kernel picks and prints it; a port chosen here
    # and passed in could be taken by any connection on the machine before the demo binds it.
    cli = Cli.start("demo", "--port", "0", "--speed", "50", "--exit-when-done", env=env)
    try:
        url = cli.wait_for(DASHBOARD)
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*", url), url
        token = cli.wait_for(TOKEN)
        found = wait_for_incidents(url, token, want=len(EXPECTED), cli=cli)
        assert by_workload(found) == EXPECTED
        assert len(found) == len(EXPECTED), "exactly one incident per failure"
        assert_cluster_registered(url, token, cluster_id="demo", method="env", cli=cli)
        checkout = next(i for i in found if i["owner_name"] == "checkout")
        detail = httpx.get(
            f"{url}/api/v1/incidents/{checkout['id']}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        report = detail["reports"][0]
        assert report["root_cause"] == "OutOfMemory"
        assert report["document"]["evidence"], "the report carries its evidence"
        assert "## Evidence" in report["markdown"] or "Evidence" in report["markdown"]
        assert detail["audit"], "every read of the cluster is audited under the incident"
        assert httpx.get(f"{url}/health/ready").status_code == 200
        login = httpx.get(f"{url}/login")
        assert login.status_code == 200 and "<html" in login.text.lower()
        code = cli.process.wait(timeout=120)
    finally:
        cli.stop()
    assert code == 0, cli.output()[-4000:]
    printed = [line for line in cli.lines if line.startswith("Incident #")]
    assert len(printed) == len(EXPECTED), cli.output()
    shown = [m.groups() for m in map(PRINTED.match, printed) if m]
    assert {(ns, name): cause for ns, name, cause in shown} == EXPECTED, cli.output()
    assert "Demo stopped" in cli.lines[-1]
    assert any(re.match(r"Six failures play out over about \d+s", line) for line in cli.lines), cli.output()
    assert not (Path(env["XDG_DATA_HOME"]) / "aetherius").exists(), "the demo leaves the user's data alone"


@pytest.fixture
async def demo_sim(tmp_path: Path) -> AsyncIterator[Path]:
    async with SimCluster("demo", speed=50) as sim:
        yield sim.write_kubeconfig(tmp_path / "kubeconfig")


def _run(kubeconfig: Path, env: dict[str, str]) -> Cli:
    return Cli.start("run", "--kubeconfig", str(kubeconfig), "--port", "0", env=env)


async def test_run_keeps_its_sqlite_file_and_prints_the_token_once(
    demo_sim: Path, env: dict[str, str]
) -> None:
    import asyncio

    first = _run(demo_sim, env)
    try:
        url = await asyncio.to_thread(first.wait_for, DASHBOARD)
        token = await asyncio.to_thread(first.wait_for, TOKEN)
        found = await asyncio.to_thread(wait_for_incidents, url, token, want=len(EXPECTED), cli=first)
        assert by_workload(found) == EXPECTED
        (cluster_id,) = {i["cluster_id"] for i in found}
        await asyncio.to_thread(
            assert_cluster_registered, url, token, cluster_id=cluster_id, method="namespace_uid", cli=first
        )
    finally:
        code = await asyncio.to_thread(first.stop)
    assert code == 0, first.output()[-4000:]
    database = Path(env["XDG_DATA_HOME"]) / "aetherius" / "aetherius.db"
    assert database.is_file()

    second = _run(demo_sim, env)
    try:
        url = await asyncio.to_thread(second.wait_for, DASHBOARD)
        again = await asyncio.to_thread(incidents, url, token)
        assert {i["id"] for i in again} >= {i["id"] for i in found}, "kept across restarts"
    finally:
        code = await asyncio.to_thread(second.stop)
    assert code == 0
    assert not any(TOKEN.search(line) for line in second.lines), "the first admin token is shown once"


def test_run_without_a_cluster_says_so_in_one_line(env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aetherius", "run", "--kubeconfig", str(tmp_path / "missing"), "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot load cluster credentials" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


async def test_run_on_a_port_in_use_says_so_in_one_line(demo_sim: Path, env: dict[str, str]) -> None:
    import asyncio

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "aetherius", "run", "--kubeconfig", str(demo_sim), "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    assert f"could not listen on 127.0.0.1:{port} (is the port in use?)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
