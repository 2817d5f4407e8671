"""What the node agent costs a node: CPU per hour at a 10 s poll, and peak memory with 110 pods.

The agent runs as it does on a node (``aetherius agent --mode node``, its own process) against
the simulated kubelet (TLS, token, a node with 110 pods, the kubelet's default maximum) and a
kernel log that grows. Two runs, one after the other:

- ``idle``: the real 10 s poll for ``--seconds``: the CPU the agent spends between polls (its
  readers and publisher looking for work), as a rate;
- ``busy``: the poll as fast as it goes (every 20 ms) for ``--seconds``: the CPU of one poll.

``cpu_s_per_hour = idle rate x 3600 + 360 polls x CPU per poll``; ``core_percent`` is that hour
of CPU as a share of one core (target ≤ 1 %). ``peak_rss_mib`` is the agent's high-water mark
(``VmHWM``; target ≤ 64 MiB, the DaemonSet's request). The baseline is the ``--seconds`` of wall
time each run takes: the agent is measured against a whole core over the same time.

    python benchmarks/node_agent.py [--seconds S] [--pods N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from aetherius.sim.node_stats import KubeletStatsServer, MiB, SimNode, SimPod

TOKEN = "benchmark-token"
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _run_agent(
    tmp: Path, server: KubeletStatsServer, *, poll: str, seconds: float, log: Path
) -> dict[str, float]:
    config = tmp / f"app-{poll}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "log_format": "json",
                "log_level": "warning",
                "metrics": {"enabled": False},
                "health": {"port": 0},
                "node_agent": {
                    "kubelet_url": server.url("node-1"),
                    "kubelet_ca_file": str(server.ca_file),
                    "kubelet_token_file": str(tmp / "token"),
                    "poll_interval": poll,
                    "kernel_logs": [str(log)],
                },
            }
        )
    )
    # As on a node: --in-cluster, with a ServiceAccount directory of its own (the API server is
    # never called: CLUSTER_ID is set and no OOM kill needs its pod looked up).
    service_account = tmp / "serviceaccount"
    service_account.mkdir(exist_ok=True)
    (service_account / "token").write_text(TOKEN)
    (service_account / "ca.crt").write_bytes(server.ca_file.read_bytes())
    prelude = (
        "import sys\nfrom pathlib import Path\nimport aetherius.kube.credentials as credentials\n"
        f"credentials.SERVICE_ACCOUNT_DIR = Path({str(service_account)!r})\n"
        "from aetherius.cli import main\nsys.argv[0] = 'aetherius'\nmain()\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        prelude,
        "agent",
        "--mode",
        "node",
        "--in-cluster",
        "--config",
        str(config),
        "--bus",
        "memory://",
        "--node-name",
        "node-1",
        env={
            **os.environ,
            "CLUSTER_ID": "benchmark",
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": "1",
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        start_requests = server.requests
        deadline = time.monotonic() + 60
        while server.requests == start_requests:  # started: its first poll arrived
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the agent did not start: {(await process.stderr.read()).decode()[-800:]}"
                )  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
        polls0, cpu0, t0 = server.requests, _cpu_seconds(process.pid), time.monotonic()
        with log.open("a") as handle:  # the kernel log grows a little meanwhile
            for i in range(20):
                handle.write(f"[{t0:.0f}.{i:06d}] eth0: link up\n")
        await asyncio.sleep(seconds)
        polls, cpu, wall = server.requests - polls0, _cpu_seconds(process.pid) - cpu0, time.monotonic() - t0
        rss = _peak_rss_mib(process.pid)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
    return {"polls": polls, "cpu_s": cpu, "wall_s": wall, "peak_rss_mib": rss}


async def measure(*, seconds: float, pods: int) -> dict[str, Any]:
    node = SimNode(
        name="node-1",
        pods=[
            SimPod("shop", f"pod-{i:03d}", f"00000000-0000-4000-8000-{i:012d}", working_set=50 * MiB)
            for i in range(pods)
        ],
    )
    with tempfile.TemporaryDirectory(prefix="aetherius-node-bench-") as name:
        tmp = Path(name)
        (tmp / "token").write_text(TOKEN)
        log = tmp / "kern.log"
        log.write_text("")
        async with KubeletStatsServer([node], token=TOKEN) as server:
            idle = await _run_agent(tmp, server, poll="10s", seconds=seconds, log=log)
            busy = await _run_agent(tmp, server, poll="20ms", seconds=seconds, log=log)
    idle_rate = idle["cpu_s"] / idle["wall_s"]
    # NB: the busy run's CPU includes its own idle share; what is left is the polls'.
    per_poll = max(0.0, busy["cpu_s"] - idle_rate * busy["wall_s"]) / max(1, busy["polls"])
    per_hour = idle_rate * 3600 + 360 * per_poll
    return {
        "pods": pods,
        "polls": int(busy["polls"]),
        "cpu_ms_per_poll": round(per_poll * 1000, 3),
        "idle_cpu_percent": round(idle_rate * 100, 3),
        "cpu_s_per_hour": round(per_hour, 2),
        "core_percent": round(per_hour / 3600 * 100, 3),
        "peak_rss_mib": round(max(idle["peak_rss_mib"], busy["peak_rss_mib"]), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run (default 20)")
    parser.add_argument("--pods", type=int, default=110, help="pods on the node (default 110)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(seconds=args.seconds, pods=args.pods))
    if args.json:
        sys.stdout.write(orjson.dumps(figures).decode() + "\n")
    else:
        for key, value in figures.items():
            print(f"{key:18} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
