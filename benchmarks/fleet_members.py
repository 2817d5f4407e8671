"""Member clusters for the fleet benchmark, in a process of their own: sims, their edge agents,
and the failures the benchmark makes in them.

``python -m benchmarks.fleet_members --hub-url URL --members FILE --directory DIR --rate R
--seconds S``: ``FILE`` lists ``[{"name", "token"}]``. Once every agent is connected it writes
``DIR/ready``; it starts failing pods when ``DIR/go`` exists, writes when each failure was made to
``DIR/emitted.json``, and stops its agents when ``DIR/stop`` exists.

NB: several such processes share the machine's cores the way member clusters never share one
event loop; one process for twenty clusters made the benchmark measure itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aetherius.config import MessageBusSettings, Settings
from aetherius.fleet.edge import EdgeAgent, edge_bus
from aetherius.fleet.identity import parse_token
from aetherius.kube import KubeClient
from aetherius.logs import configure_logging
from aetherius.sim import SimCluster
from benchmarks.pipeline import bench_pod, bench_scenario

NEW_EVERY = 10


def _event(name: str, pod: str, *, count: int) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "bench"},
        "involvedObject": {
            "kind": "Pod",
            "namespace": "bench",
            "name": pod,
            "uid": f"uid-{pod}",
            "apiVersion": "v1",
        },
        "reason": "BackOff",
        "message": f"Back-off restarting failed container app in pod {pod}",
        "type": "Warning",
        "count": count,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": {"component": "kubelet", "host": "node-1"},
    }


async def _wait_for(path: Path) -> None:
    """Until the benchmark writes ``path`` (another process: no event to await)."""
    while not await asyncio.to_thread(path.exists):  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def serve(
    *, hub_url: str, members: list[dict[str, str]], directory: Path, rate: float, seconds: float
) -> None:
    bus = MessageBusSettings(url=hub_url, reconnect_delay=timedelta(seconds=0.5))
    settings = Settings.model_validate(
        {"message_bus": bus, "metrics": {"enabled": False}, "health": {"port": 0}, "fleet": {"mode": "edge"}}
    )
    scenario = bench_scenario(directory / "healthy.yaml", workloads=-1)
    sims: dict[str, SimCluster] = {}
    async with contextlib.AsyncExitStack() as stack:
        for member in members:
            sim = await stack.enter_async_context(SimCluster(scenario))
            client = await KubeClient.from_kubeconfig(
                sim.write_kubeconfig(directory / f"{member['name']}.kubeconfig")
            )
            stack.push_async_callback(client.close)
            cluster, seed = parse_token(member["token"])
            agent_bus = edge_bus(settings, cluster=cluster, seed=seed)
            await agent_bus.connect()
            agent = EdgeAgent(settings, client=client, bus=agent_bus, cluster=cluster)
            await agent.start()
            stack.push_async_callback(agent_bus.close)
            stack.push_async_callback(agent.stop)
            sims[cluster] = sim
        (directory / "ready").write_text("ready")
        await _wait_for(directory / "go")
        emitted = await _fail(sims, rate=rate, seconds=seconds)
        (directory / "emitted.json").write_text(json.dumps(emitted))
        await _wait_for(directory / "stop")


async def _fail(sims: dict[str, SimCluster], *, rate: float, seconds: float) -> dict[str, float]:
    """Failures at ``rate`` per second over the clusters: one in ten a pod starting to crash-loop."""
    names = list(sims)
    emitted: dict[str, float] = {}
    counts: dict[tuple[str, int], int] = {}
    total = int(rate * seconds)
    start = time.perf_counter()
    for n in range(total):
        cluster = names[n % len(names)]
        workload = (n // len(names)) // NEW_EVERY
        pod = f"w{workload}-7d9f8c6b5-x2k4q"
        key = (cluster, workload)
        if key not in counts:
            counts[key] = 1
            emitted[f"{cluster}|w{workload}-7d9f8c6b5"] = time.time()
            sims[cluster].create(bench_pod(workload))
            sims[cluster].create(_event(f"{pod}.bench", pod, count=1))
        else:
            counts[key] += 1
            sims[cluster].patch("Event", "bench", f"{pod}.bench", {"count": counts[key]})
        delay = start + (n + 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    return emitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub-url", required=True)
    parser.add_argument("--members", type=Path, required=True)
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    configure_logging(level="warning")
    members = json.loads(args.members.read_text())
    asyncio.run(
        serve(
            hub_url=args.hub_url,
            members=members,
            directory=args.directory,
            rate=args.rate,
            seconds=args.seconds,
        )
    )


if __name__ == "__main__":
    main()
