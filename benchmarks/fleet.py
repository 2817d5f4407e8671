"""Fleet benchmark: member clusters' edge agents into one central plane, and central's scale-out.

Three measurements in one run:

* latency: ``--clusters`` simulated clusters (default 20), each with its edge agent connected to a
  central nats-server with one nkey user per cluster; warning Events are emitted in them at a
  total of ``--rate`` failure Signals per second for ``--seconds``, one in ten about a workload
  not seen before: a pod created crash-looping, a new incident diagnosed by central through that
  cluster's agent. p50/p99 of the pod's creation → its incident's first report committed in
  PostgreSQL. Central is three ``aetherius orchestrator`` processes in ``fleet.mode: central``.
* scale-out: a backlog of update Signals consumed by 1, then by 3 orchestrator replicas, each in
  a cgroup of its own held to ``--replica-cpu`` cores (the chart's 250m limit): Signals stored
  per second, the median of ``--trials`` alternating trials of each, and their ratio. Where
  cgroups are not writable, a clear message and no ratio.
* the edge agent's peak resident memory (``VmHWM``) after it listed and published
  ``--agent-events`` Events (the real command, ``aetherius agent --mode edge``, as a process).

The simulated clusters and their agents run in ``--member-processes`` processes of their own
(``benchmarks.fleet_members``), each making its share of the failures; every orchestrator replica
and the measured agent are processes of their own too.

``python -m benchmarks.fleet [--json]``; ``run(smoke=True)`` is the suite's small size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import yaml
from tests.hub import Hub, spawn_agent
from tests.orchestrator.processes import Replicas

from aetherius.logs import configure_logging
from aetherius.sim import SimCluster
from aetherius.store import migrate
from aetherius.store.engine import create_engine, resolve_url
from benchmarks.cgroups import cpu_limits_work
from benchmarks.pipeline import SimProcess, _admin, _consuming, _throughput, bench_scenario, p50_p99

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432"


def _central_config(directory: Path, hub: Hub, db: str) -> Path:
    seed = directory / "central.nk"
    seed.write_text(hub.central_seed, encoding="utf-8")
    seed.chmod(0o600)
    document = {
        "log_format": "json",
        "message_bus": {"url": hub.url, "nkey_seed_file": str(seed), "max_reconnect_attempts": -1},
        "metrics": {"enabled": False},
        "health": {"port": 0},
        "database": {"url": db, "migrate_on_start": False},
        "redis": {"url": "redis://127.0.0.1:6379/0"},
        "fleet": {"mode": "central"},
        "orchestrator": {
            "pull_timeout": "0.5s",
            "batch_size": 64,
            "diagnoses_per_minute": 600_000,
            "diagnosis_burst": 10_000,
        },
    }
    path = directory / "app.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


class MemberHosts:
    """The member clusters, ``processes`` processes of them (``benchmarks.fleet_members``)."""

    def __init__(
        self, tmp: Path, hub: Hub, tokens: dict[str, str], *, processes: int, rate: float, seconds: float
    ):
        names = sorted(tokens)
        self.dirs: list[Path] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        for index in range(max(1, min(processes, len(names)))):
            chosen = names[index::processes]
            directory = tmp / f"members-{index}"
            directory.mkdir()
            members = directory / "members.json"
            members.write_text(json.dumps([{"name": n, "token": tokens[n]} for n in chosen]))
            log = (directory / "members.log").open("wb")
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.fleet_members",
                        "--hub-url",
                        hub.url,
                        "--members",
                        str(members),
                        "--directory",
                        str(directory),
                        "--rate",
                        str(rate * len(chosen) / len(names)),
                        "--seconds",
                        str(seconds),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
            self.dirs.append(directory)

    async def _all(self, name: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all((d / name).exists() for d in self.dirs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                logs = "\n".join((d / "members.log").read_text()[-2000:] for d in self.dirs)
                raise RuntimeError(f"member processes did not write {name}\n{logs}")
            await asyncio.sleep(0.1)

    async def ready(self) -> None:
        await self._all("ready", timeout=120)

    async def fail(self, *, timeout: float) -> dict[tuple[str, str], float]:
        for directory in self.dirs:
            (directory / "go").write_text("go")
        await self._all("emitted.json", timeout=timeout)
        emitted: dict[tuple[str, str], float] = {}
        for directory in self.dirs:
            for key, stamp in json.loads((directory / "emitted.json").read_text()).items():
                cluster, owner = key.split("|", 1)
                emitted[(cluster, owner)] = stamp
        return emitted

    def stop(self) -> None:
        for directory in self.dirs:
            (directory / "stop").write_text("stop")
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _latency(
    tmp: Path,
    db: str,
    *,
    clusters: int,
    rate: int,
    seconds: float,
    processes: int,
    stack: contextlib.AsyncExitStack,
) -> list[float]:
    hub = Hub(tmp / "hub")
    hub.directory.mkdir()
    tokens = {f"member-{i:02d}": hub.add(f"member-{i:02d}") for i in range(clusters)}
    hub.start()
    stack.callback(hub.stop)
    await hub.provision()
    hosts = MemberHosts(tmp, hub, tokens, processes=processes, rate=rate, seconds=seconds)
    stack.callback(hosts.stop)
    own = await stack.enter_async_context(SimCluster())
    config = _central_config(tmp, hub, db)
    replicas = Replicas(
        config=config, kubeconfig=own.write_kubeconfig(tmp / "central.kubeconfig"), directory=tmp
    )
    replicas.start(3)
    stack.callback(replicas.stop_all)
    await hosts.ready()
    await _consuming(replicas, timeout=120)
    emitted = await hosts.fail(timeout=seconds + 120)
    deadline = time.monotonic() + 120
    connection = await asyncpg.connect(db)
    try:
        while time.monotonic() < deadline:
            done = await connection.fetchval(
                "SELECT count(DISTINCT incident_id) FROM reports r JOIN incidents i ON i.id = r.incident_id"
                " WHERE i.cluster_id LIKE 'member-%'"
            )
            if done >= len(emitted):
                break
            await asyncio.sleep(0.2)
        rows = await connection.fetch(
            "SELECT i.cluster_id, i.object_name, i.owner_name, min(r.created_at) AS at,"
            " min(i.created_at) AS opened FROM reports r"
            " JOIN incidents i ON i.id = r.incident_id WHERE i.cluster_id LIKE 'member-%'"
            " GROUP BY i.cluster_id, i.object_name, i.owner_name"
        )
        reads = await connection.fetchrow(
            "SELECT count(*) AS reads, count(DISTINCT a.incident_id) AS incidents FROM audit_log a"
            " JOIN incidents i ON i.id = a.incident_id WHERE i.cluster_id LIKE 'member-%'"
        )
    finally:
        await connection.close()
    if reads["incidents"]:
        # NB: a new incident's diagnosis reads through its cluster's agent: fewer reads, less wait.
        print(
            f"fleet: reads through the agents per incident: {reads['reads'] / reads['incidents']:.1f}",
            file=sys.stderr,
        )
    latencies: list[float] = []
    to_open: list[float] = []  # the pod's creation → central opened its incident
    to_report: list[float] = []  # the incident opened → its first report (reads through the agent)
    for row in rows:
        # NB: the incident is the pod's workload (its ReplicaSet, or the pod): either names it.
        name = next((n for n in (row["owner_name"], row["object_name"]) if n and "-7d9f8c6b5" in n), "")
        key = (row["cluster_id"], name.split("-7d9f8c6b5")[0] + "-7d9f8c6b5")
        if key in emitted:
            latencies.append((row["at"].timestamp() - emitted[key]) * 1000)
            to_open.append((row["opened"].timestamp() - emitted[key]) * 1000)
            to_report.append((row["at"] - row["opened"]).total_seconds() * 1000)
    if not latencies:
        raise RuntimeError(f"no report matched the failures emitted ({len(rows)} reports)")
    # NB: where the time goes, for whoever chases the latency: on stderr, beside the trials.
    for stage, values in (("created → incident opened", to_open), ("opened → first report", to_report)):
        print(f"fleet: latency {stage}: {_percentiles(values)}", file=sys.stderr)
    return latencies


def _percentiles(values: list[float]) -> str:
    p50, p99 = p50_p99(values)
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _agent_rss(tmp: Path, *, events: int) -> float:
    """The edge agent's ``VmHWM`` once it listed ``events`` Events and central acknowledged them."""
    hub = Hub(tmp / "rss-hub")
    hub.directory.mkdir()
    token = hub.add("heavy")
    hub.start()
    try:
        await hub.provision()
        async with SimCluster(history_size=max(10_000, events + 100)) as sim:
            sim.preload_events(events, store_objects=True, pods=1000)
            kubeconfig = sim.write_kubeconfig(tmp / "heavy.kubeconfig")
            agent = spawn_agent(tmp, hub_url=hub.url, token=token, kubeconfig=kubeconfig, n=1).process
            central = hub.central_bus(name="rss-count")
            await central.connect()
            try:
                assert central.nc is not None
                js = central.nc.jetstream()
                # NB: not every Event is a failure (Normal ones are filtered): the agent is done
                # when what central holds from it stops growing.
                deadline = time.monotonic() + 900
                published, steady_since = -1, time.monotonic()
                while time.monotonic() < deadline and agent.poll() is None:
                    info = await js.stream_info(
                        hub.bus.stream, subjects_filter=f"{hub.bus.subject_prefix}.heavy.>"
                    )
                    if info.state.messages != published:
                        published, steady_since = info.state.messages, time.monotonic()
                    elif published > 0 and time.monotonic() - steady_since > 5:
                        break
                    await asyncio.sleep(0.5)
                if published <= 0 or agent.poll() is not None:
                    raise RuntimeError(f"the agent stopped or published nothing ({published}); see {tmp}")
                return _peak_rss_mib(agent.pid)
            finally:
                agent.terminate()
                agent.wait(timeout=30)
                await central.close()
    finally:
        hub.stop()


async def _scale_out(
    tmp: Path, kubeconfig: Path, db: str, *, backlog: int, replica_cpu: float, trials: int
) -> tuple[float, float]:
    """Signals stored per second by 1 and by 3 replicas: the median of ``trials`` of each.

    NB: the trials alternate (1, 3, 1, 3, ...) so that a shared machine's load drifting during the
    run weighs on both sides alike; every trial's figures go to stderr. The default backlog
    (12,000) keeps three replicas busy ~7 s: with 6,000 (~4 s) their start and drain (~0.5 s,
    the first pulls and the last replica's last batch) were an eighth of what was measured.
    """
    ones: list[float] = []
    threes: list[float] = []
    for trial in range(trials):
        for replicas_n, figures in ((1, ones), (3, threes)):
            figures.append(
                await _throughput(
                    tmp, kubeconfig, db, replicas_n=replicas_n, backlog=backlog, cpu_limit=replica_cpu
                )
            )
        print(
            f"fleet: scale-out trial {trial + 1}/{trials}: 1 replica {ones[-1]:.1f}/s,"
            f" 3 replicas {threes[-1]:.1f}/s",
            file=sys.stderr,
        )
    return statistics.median(ones), statistics.median(threes)


async def run(
    *,
    smoke: bool = False,
    clusters: int = 20,
    rate: int = 200,
    seconds: float = 20,
    backlog: int = 12_000,
    replica_cpu: float = 0.25,
    agent_events: int = 100_000,
    member_processes: int = 1,
    trials: int = 3,
) -> dict[str, float | int | str | None]:
    if smoke:
        clusters, rate, seconds, backlog, agent_events, trials = 2, 20, 1.5, 200, 2000, 1
    name = f"aeth_fleet_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    db = f"{ADMIN_DSN}/{name}"
    scale_note = cpu_limits_work()
    one = three = 0.0
    try:
        engine = create_engine(resolve_url(db))
        await migrate.upgrade(engine)
        await engine.dispose()
        with tempfile.TemporaryDirectory(prefix="aeth-fleet-") as directory:
            tmp = Path(directory)
            async with contextlib.AsyncExitStack() as stack:
                latencies = await _latency(
                    tmp,
                    db,
                    clusters=clusters,
                    rate=rate,
                    seconds=seconds,
                    processes=member_processes,
                    stack=stack,
                )
            if scale_note:
                print(f"fleet: scale-out skipped: {scale_note}", file=sys.stderr)
            else:
                sim = SimProcess(
                    tmp, scenario=bench_scenario(tmp / "scale.yaml", workloads=backlog // 50 + 1)
                )
                try:
                    kubeconfig = await sim.ready()
                    one, three = await _scale_out(
                        tmp, kubeconfig, db, backlog=backlog, replica_cpu=replica_cpu, trials=trials
                    )
                finally:
                    sim.stop()
            rss = await _agent_rss(tmp, events=agent_events)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    p50, p99 = p50_p99(latencies)
    return {
        "clusters": clusters,
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "signals_per_s_1": round(one, 1) if not scale_note else None,
        "signals_per_s_3": round(three, 1) if not scale_note else None,
        "scale_ratio": round(three / one, 2) if one else None,
        "agent_peak_rss_mib": round(rss, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--backlog", type=int, default=12_000)
    parser.add_argument("--replica-cpu", type=float, default=0.25, help="cores per replica (250m: 0.25)")
    parser.add_argument("--agent-events", type=int, default=100_000)
    parser.add_argument(
        "--member-processes", type=int, default=1, help="processes the member clusters run in"
    )
    parser.add_argument(
        "--trials", type=int, default=3, help="scale-out trials of 1 and 3 replicas (the median is reported)"
    )
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    # NB: the agents run in this process: their lines go to stderr, the figures alone to stdout.
    configure_logging(level="warning")
    result = asyncio.run(
        run(
            smoke=args.smoke,
            clusters=args.clusters,
            rate=args.rate,
            seconds=args.seconds,
            backlog=args.backlog,
            replica_cpu=args.replica_cpu,
            agent_events=args.agent_events,
            member_processes=args.member_processes,
            trials=args.trials,
        )
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value}")


if __name__ == "__main__":
    main()
