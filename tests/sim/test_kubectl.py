"""The real kubectl against the sim: the demo's failures show as on a real cluster."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from aetherius.sim import SimCluster, SimHandle

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimHandle, Path]]:
    handle = SimCluster.start_in_thread("demo", bookmark_interval=0.5)
    try:
        handle.timeline.run_to_end()
        yield handle, handle.write_kubeconfig(tmp_path_factory.mktemp("kubectl") / "kubeconfig")
    finally:
        handle.stop()


def kubectl(config: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def status_by_pod(output: str) -> dict[str, str]:
    rows = [line.split() for line in output.strip().splitlines()[1:]]
    return {row[1]: row[3] for row in rows}


def test_get_pods_shows_the_demo_failures(demo: tuple[SimHandle, Path]) -> None:
    _, config = demo
    result = kubectl(config, "get", "pods", "-A")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:6] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    statuses = status_by_pod(result.stdout)
    by_prefix = {name.rsplit("-", 2)[0]: status for name, status in statuses.items() if name.count("-") >= 2}
    assert by_prefix["checkout"] == "CrashLoopBackOff"
    assert by_prefix["orders"] == "CrashLoopBackOff"
    assert by_prefix["payments"] == "CreateContainerConfigError"
    assert by_prefix["report-builder"] == "Pending"
    assert "ImagePullBackOff" in statuses.values()
    assert next(line for line in result.stdout.splitlines() if "blog-" in line).split()[2:4] == [
        "0/1",
        "Running",
    ]
    assert sum(status == "Running" for status in statuses.values()) >= 10


def test_selectors_and_yaml(demo: tuple[SimHandle, Path]) -> None:
    _, config = demo
    labelled = kubectl(config, "get", "pods", "-A", "-l", "app=cart", "-o", "name")
    assert labelled.returncode == 0, labelled.stderr
    assert len(labelled.stdout.split()) == 2 and all("cart-" in n for n in labelled.stdout.split())
    pending = kubectl(config, "get", "pods", "-A", "--field-selector", "status.phase=Pending", "-o", "name")
    assert "report-builder" in pending.stdout and "cart" not in pending.stdout
    running = kubectl(config, "get", "pods", "-n", "shop", "--field-selector", "status.phase=Running")
    assert running.returncode == 0 and "cart-" in running.stdout and "payments" not in running.stdout
    deploy = kubectl(config, "get", "deploy", "checkout", "-n", "shop", "-o", "yaml")
    assert deploy.returncode == 0, deploy.stderr
    doc = yaml.safe_load(deploy.stdout)
    assert (doc["kind"], doc["apiVersion"]) == ("Deployment", "apps/v1")
    assert doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "256Mi"
    bad = kubectl(config, "get", "pods", "-A", "--field-selector", "spec.image=x")
    assert bad.returncode != 0 and "field label not supported" in bad.stderr


def test_logs_previous_and_tail(demo: tuple[SimHandle, Path]) -> None:
    handle, config = demo
    orders = next(
        p["metadata"]["name"]
        for p in handle.sim.list("Pod", "shop")
        if p["metadata"]["name"].startswith("orders-")
    )
    previous = kubectl(config, "logs", "-n", "shop", orders, "--previous")
    assert previous.returncode == 0, previous.stderr
    assert "connect: connection refused" in previous.stdout.splitlines()[-1]
    tail = kubectl(config, "logs", "-n", "shop", orders, "--previous", "--tail", "2")
    assert len(tail.stdout.splitlines()) == 2
    payments = next(
        p["metadata"]["name"]
        for p in handle.sim.list("Pod", "shop")
        if p["metadata"]["name"].startswith("payments-")
    )
    waiting = kubectl(config, "logs", "-n", "shop", payments)
    assert waiting.returncode != 0 and "is waiting to start: CreateContainerConfigError" in waiting.stderr


def test_describe_shows_events_with_counts(demo: tuple[SimHandle, Path]) -> None:
    handle, config = demo
    checkout = next(
        p["metadata"]["name"]
        for p in handle.sim.list("Pod", "shop")
        if p["metadata"]["name"].startswith("checkout-")
    )
    described = kubectl(config, "describe", "pod", "-n", "shop", checkout)
    assert described.returncode == 0, described.stderr
    assert "OOMKilled" in described.stdout and "137" in described.stdout
    backoff = [line for line in described.stdout.splitlines() if "Warning  BackOff" in line]
    assert backoff and "Back-off restarting failed container checkout" in backoff[0] and "(x" in backoff[0]


def test_get_events_watch_sees_a_new_event(demo: tuple[SimHandle, Path]) -> None:
    handle, config = demo
    watching = len(handle.sim.faults.open_watches)
    process = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(config), "get", "events", "-A", "-w", "--request-timeout", "20s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        _until(lambda: len(handle.sim.faults.open_watches) > watching, "kubectl opened its watch")
        handle.sim.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "cart.fresh", "namespace": "shop"},
                "involvedObject": {"kind": "Pod", "name": "cart-live", "namespace": "shop"},
                "reason": "FreshlyWatched",
                "message": "a new event arrives",
                "type": "Warning",
                "source": {"component": "kubelet"},
            }
        )
        _until(lambda: any("FreshlyWatched" in line for line in lines), "the new event printed")
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)
        err = process.stderr.read() if process.stderr else ""  # type: ignore[union-attr]
    out = "".join(lines)
    assert "FreshlyWatched" in out, err
    assert out.count("LAST SEEN") == 1  # one header, then rows as they arrive


def _until(predicate: Callable[[], bool], what: str, *, timeout: float = 20.0) -> None:
    """Wait on a condition (never a fixed sleep): a slow machine waits longer, a fast one less."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.02)


def test_auth_can_i_list_reads_the_sims_rules_review(demo: tuple[SimHandle, Path]) -> None:
    """``kubectl auth can-i --list`` asks the same SelfSubjectRulesReview Aetherius asks at start
    (kubectl sends it as protobuf, and sends no token over plain HTTP: it is read-only's rules)."""
    _, config = demo
    result = kubectl(config, "auth", "can-i", "--list", "-n", "kube-system")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.strip().splitlines()]
    assert rows[0] == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert ["*.*", "[]", "[]", "[get", "list", "watch]"] in rows
    assert ["selfsubjectrulesreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    assert ["[/healthz]", "[]", "[get]"] in rows
