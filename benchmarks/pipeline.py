"""Pipeline benchmark: failure Signals through NATS into orchestrator processes on PostgreSQL.

Two measurements in one run, on a fresh PostgreSQL database and fresh NATS streams:

* latency: 3 replicas, failure Signals published at ``--rate`` per second for ``--seconds``; one
  in ``--new-every`` opens a new incident (a new workload: diagnosed live against a sim, report
  committed), the rest update open incidents. p50/p99 of publish → report committed.
* throughput: a backlog of ``--backlog`` update Signals consumed by 1, then by 3 replicas
  (separate clusters and streams); Signals stored per second from the first stored to the last.

The generator (this process), the sim (``aetherius sim``) and each replica are separate
processes, so none of them steals the others' event loop. ``--profile`` also prints, per
throughput run, the CPU each replica and its PostgreSQL backends used per wall second and what
the backends were doing (``pg_stat_activity`` samples): whether a replica is CPU-bound or waits.

``python -m benchmarks.pipeline [--json] [--profile]``; ``run(smoke=True)`` is the suite's small size.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import psutil
import yaml
from tests.orchestrator.processes import Replicas, bus_section, write_app_yaml

from aetherius.bus import open_bus
from aetherius.config import MessageBusSettings
from aetherius.signals import ObjectRef, Signal, dedup_key
from aetherius.store import migrate
from aetherius.store.engine import create_engine, resolve_url
from benchmarks.cgroups import CpuLimit

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432"
NATS_URL = "nats://127.0.0.1:4222"


def failure(cluster: str, workload: int, occurrence: int) -> Signal:
    rs = f"w{workload}-7d9f8c6b5"
    pod = f"{rs}-x2k4q"
    return Signal(
        cluster_id=cluster,
        source="pod",
        object=ObjectRef(kind="Pod", name=pod, namespace="bench", uid=f"uid-{pod}"),
        owner=ObjectRef(kind="ReplicaSet", name=rs, namespace="bench"),
        labels={"pod-template-hash": "7d9f8c6b5"},
        reason="OOMKilled",
        message="container killed for memory",
        severity="critical",
        dedup_key=dedup_key(cluster, "pod", "bench", pod, "OOMKilled"),
        occurrence=occurrence,
        container="app",
    )


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(f"{ADMIN_DSN}/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _scalar(url: str, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


def _replicas(directory: Path, kubeconfig: Path, db: str, *, redis: str) -> tuple[Replicas, dict[str, Any]]:
    bus = bus_section(NATS_URL)
    config = write_app_yaml(
        directory,
        bus=bus,
        database={"url": db, "migrate_on_start": False},
        redis={"url": redis},
        kube={"qps": 5000, "burst": 5000},
        orchestrator={"batch_size": 64, "diagnoses_per_minute": 600_000, "diagnosis_burst": 10_000},
    )
    return Replicas(config=config, kubeconfig=kubeconfig, directory=directory), bus


def bench_pod(workload: int) -> dict[str, Any]:
    """Workload ``workload``'s one pod: OOM-killed at its 256Mi limit and crash-looping."""
    rs = f"w{workload}-7d9f8c6b5"
    name = f"{rs}-x2k4q"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "bench",
            "uid": f"uid-{name}",
            "creationTimestamp": "2026-11-30T09:10:00Z",
            "labels": {"app": f"w{workload}", "pod-template-hash": "7d9f8c6b5"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs,
                    "uid": f"uid-{rs}",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.com/bench/app:1.0",
                    "resources": {"limits": {"memory": "256Mi"}},
                }
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "registry.example.com/bench/app:1.0",
                    "ready": False,
                    "restartCount": 12,
                    "state": {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": "back-off 5m0s restarting failed container",
                        }
                    },
                    "lastState": {
                        "terminated": {
                            "reason": "OOMKilled",
                            "exitCode": 137,
                            "startedAt": "2026-11-30T09:57:02Z",
                            "finishedAt": "2026-11-30T09:57:39Z",
                        }
                    },
                }
            ],
        },
    }


def bench_scenario(path: Path, *, workloads: int) -> Path:
    """A sim scenario holding the pods the failure Signals name, each OOM-killed and crash-looping.

    The Signals must describe a cluster that exists: a diagnosis of a pod the cluster does not
    have is inconclusive (Unknown), and an inconclusive incident is re-diagnosed on every new
    crash Signal, which is not the workload of a cluster that is really failing.
    """
    pods = [bench_pod(workload) for workload in range(workloads + 1)]
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "bench"},
        "status": {"phase": "Active"},
    }
    documents = [namespace, {"apiVersion": "v1", "kind": "List", "items": pods}]
    path.write_text(yaml.safe_dump_all(documents))
    return path


class SimProcess:
    """``aetherius sim`` in its own process, serving ``scenario``; its kubeconfig once it serves."""

    def __init__(self, directory: Path, *, scenario: Path) -> None:
        self.kubeconfig = directory / "kubeconfig"
        self.log = (directory / "sim.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aetherius",
                "sim",
                "--scenario",
                str(scenario),
                "--kubeconfig-out",
                str(self.kubeconfig),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )

    async def ready(self, *, timeout: float = 60) -> Path:
        deadline = time.monotonic() + timeout
        while not self.kubeconfig.exists() or not self.kubeconfig.stat().st_size:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sim did not start")
            await asyncio.sleep(0.1)
        return self.kubeconfig

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Profile:
    """CPU per wall second of replicas and of the database's backends, and their wait states."""

    def __init__(self, db: str, pids: list[int]) -> None:
        self.db = db.rsplit("/", 1)[-1]
        self.replicas = [psutil.Process(pid) for pid in pids]
        self.backends: dict[int, psutil.Process] = {}
        self.start_cpu: dict[int, float] = {}
        self.states: collections.Counter[str] = collections.Counter()
        self.started = time.perf_counter()
        for proc in self.replicas:
            self.start_cpu[proc.pid] = _cpu(proc)

    async def sample(self, connection: Any) -> None:
        rows = await connection.fetch(
            "SELECT pid, state, coalesce(wait_event_type, 'CPU') AS wait, coalesce(wait_event, '') AS event"
            " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.db,
        )
        for row in rows:
            if row["pid"] not in self.backends:
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(row["pid"])
                    self.backends[row["pid"]] = proc
                    self.start_cpu[row["pid"]] = _cpu(proc)
            state = row["state"] or "?"
            self.states[f"{state}:{row['wait']}:{row['event']}" if state == "active" else state] += 1

    def report(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.started

        def used(procs: list[psutil.Process]) -> float:
            total = 0.0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    total += _cpu(proc) - self.start_cpu.get(proc.pid, 0.0)
            return round(total / wall, 2)

        samples = sum(self.states.values()) or 1
        return {
            "replica_cpu_per_s": used(self.replicas),
            "postgres_cpu_per_s": used(list(self.backends.values())),
            "machine_load_1m": round(os.getloadavg()[0], 2),
            "backend_states": {k: round(v / samples, 2) for k, v in self.states.most_common(6)},
        }


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


PROFILES: list[dict[str, Any]] = []


async def _consuming(replicas: Replicas, *, timeout: float = 60) -> None:
    """Until every replica logged that it consumes (imports, store and bus checks are done)."""
    deadline = time.monotonic() + timeout
    while not all("orchestrator consuming" in r.text() for r in replicas.started):
        if time.monotonic() > deadline:
            raise RuntimeError(f"replicas did not start\n{replicas.logs()}")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)


async def _latency(
    tmp: Path, kubeconfig: Path, db: str, *, rate: int, seconds: float, new_every: int
) -> list[float]:
    cluster = f"lat-{secrets.token_hex(3)}"
    replicas, bus = _replicas(tmp / "lat", kubeconfig, db, redis="redis://127.0.0.1:6379/0")
    publisher = await open_bus(MessageBusSettings.model_validate(bus), name="bench")
    replicas.start(3)
    emitted: dict[str, float] = {}
    try:
        await _consuming(replicas)
        total = int(rate * seconds)
        start = time.perf_counter()
        workloads = 0
        for n in range(total):
            if n % new_every == 0:
                workloads += 1
                emitted[f"w{workloads}"] = time.time()
                signal = failure(cluster, workloads, 1)
            else:
                signal = failure(cluster, max(1, workloads), n + 2)
            await publisher.publish([signal])
            delay = start + (n + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = await _scalar(
                db, "SELECT count(*) FROM incidents WHERE cluster_id = $1 AND report_version >= 1", cluster
            )
            if done >= len(emitted):
                break
            await asyncio.sleep(0.2)
        connection = await asyncpg.connect(db)
        try:
            rows = await connection.fetch(
                "SELECT i.owner_name, min(r.created_at) AS at FROM reports r JOIN incidents i ON i.id = r.incident_id"
                " WHERE i.cluster_id = $1 GROUP BY i.owner_name",
                cluster,
            )
        finally:
            await connection.close()
    finally:
        replicas.stop_all()
        await publisher.close()
    return [
        (r["at"].timestamp() - emitted[r["owner_name"]]) * 1000 for r in rows if r["owner_name"] in emitted
    ]


async def _throughput(
    tmp: Path, kubeconfig: Path, db: str, *, replicas_n: int, backlog: int, cpu_limit: float | None = None
) -> float:
    """Signals stored per second by ``replicas_n`` replicas (each held to ``cpu_limit`` cores)."""
    cluster = f"tp{replicas_n}-{secrets.token_hex(3)}"
    replicas, bus = _replicas(tmp / f"tp{replicas_n}", kubeconfig, db, redis="redis://127.0.0.1:6379/0")
    publisher = await open_bus(MessageBusSettings.model_validate(bus), name="bench")
    limits: list[CpuLimit] = []
    try:
        workloads = max(1, backlog // 50)
        signals = [failure(cluster, 1 + n % workloads, n + 1) for n in range(backlog)]
        replicas.start(replicas_n)
        if cpu_limit is not None:
            limits.extend(CpuLimit(r.process.pid, cores=cpu_limit) for r in replicas.started)
        await _consuming(replicas, timeout=180)
        for i in range(0, len(signals), 500):
            await publisher.publish(signals[i : i + 500])
        first: float | None = None
        first_count = 0
        stored = 0
        now = time.perf_counter()
        deadline = time.monotonic() + 300
        profile = Profile(db, [r.process.pid for r in replicas.started])
        connection = await asyncpg.connect(db)
        try:
            while time.monotonic() < deadline:
                stored = await connection.fetchval(
                    "SELECT count(*) FROM signals WHERE cluster_id = $1", cluster
                )
                now = time.perf_counter()
                if stored and first is None:
                    first, first_count = now, stored
                if stored >= backlog:
                    break
                await profile.sample(connection)
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"only {stored} of {backlog} Signals stored\n{replicas.logs()}")
        finally:
            await connection.close()
        PROFILES.append({"replicas": replicas_n, **profile.report()})
    finally:
        replicas.stop_all()
        for limit in limits:
            limit.release()
        await publisher.close()
    assert first is not None
    return float((backlog - first_count) / max(now - first, 1e-6))


def p50_p99(values: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile (nearest rank) of ``values``; NaN when there are none."""
    ordered = sorted(values) or [float("nan")]
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def run(
    *, smoke: bool = False, rate: int = 200, seconds: float = 20, backlog: int = 6000
) -> dict[str, float]:
    if smoke:
        rate, seconds, backlog = 20, 1.5, 200
    name = f"aeth_bench_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    db = f"{ADMIN_DSN}/{name}"
    try:
        engine = create_engine(resolve_url(db))
        await migrate.upgrade(engine)
        await engine.dispose()
        with tempfile.TemporaryDirectory(prefix="aeth-bench-") as tmp:
            workloads = max(int(rate * seconds) // 10, backlog // 50) + 1
            sim = SimProcess(
                Path(tmp), scenario=bench_scenario(Path(tmp) / "bench.yaml", workloads=workloads)
            )
            try:
                kubeconfig = await sim.ready()
                latencies = await _latency(
                    Path(tmp), kubeconfig, db, rate=rate, seconds=seconds, new_every=10
                )
                one = await _throughput(Path(tmp), kubeconfig, db, replicas_n=1, backlog=backlog)
                three = await _throughput(Path(tmp), kubeconfig, db, replicas_n=3, backlog=backlog)
            finally:
                sim.stop()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    p50, p99 = p50_p99(latencies)
    return {
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "signals_per_s_1": round(one, 1),
        "signals_per_s_3": round(three, 1),
        "scale_ratio": round(three / one, 2) if one else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--backlog", type=int, default=6000)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also print CPU and wait states (stderr)")
    args = parser.parse_args()
    result = asyncio.run(run(smoke=args.smoke, rate=args.rate, seconds=args.seconds, backlog=args.backlog))
    if args.profile:
        for profile in PROFILES:
            print(json.dumps(profile), file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")
    sys.exit(0)


if __name__ == "__main__":
    main()
