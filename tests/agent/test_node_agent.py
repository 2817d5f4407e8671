"""The node agent end to end: the simulated kubelet (TLS, token auth) and API server, a kernel
log file, real NATS JetStream. A node pushed towards memory pressure and a kernel OOM kill of a
Deployment's pod become Signals on the bus: the pressure with its figures, the OOM kill attributed
to its pod, container and workload (so it groups with the Watcher's Signals about them). An agent
restarted over the same log publishes nothing twice; a kubelet that refuses or answers garbage is
said, never fatal; a reader that dies is on /health/live."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml

from aetherius.agent.kubelet import KubeletClient
from aetherius.agent.node import NodeAgent
from aetherius.bus import open_bus
from aetherius.config import Settings, load_settings
from aetherius.kube import KubeClient
from aetherius.signals import Signal, decode_signal
from aetherius.sim import SimCluster
from aetherius.sim.node_stats import Falling, GiB, KubeletStatsServer, MiB, SimNode, SimPod
from tests.watch.harness import bus_settings

UID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
CID = "c" * 64
TOKEN = "node-agent-token"


def _pod_scenario(path: Path) -> Path:
    """The pod the kernel kills: a Deployment's replica, with its container id in its status."""
    doc = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "cache-7d9f8-x2k4q",
                    "namespace": "shop",
                    "uid": UID,
                    "labels": {"app": "cache", "pod-template-hash": "7d9f8"},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": "cache-7d9f8",
                            "uid": "rs-1",
                            "controller": True,
                        }
                    ],
                },
                "spec": {"nodeName": "node-1", "containers": [{"name": "redis", "image": "redis:7"}]},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": "redis",
                            "ready": True,
                            "restartCount": 0,
                            "containerID": f"containerd://{CID}",
                            "state": {"running": {}},
                        }
                    ],
                },
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _oom_line(ktime: str) -> str:
    memcg = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope"
    return f"[{ktime}] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),task_memcg={memcg},task=redis-server,pid=4321,uid=999\n"


def _settings(bus: dict[str, Any], kernel_log: Path, **node_agent: Any) -> Settings:
    values = {"node_name": "node-1", "kernel_logs": [str(kernel_log)], "poll_interval": "0.1s", **node_agent}
    overrides = {("message_bus", k): v for k, v in bus.items()}
    overrides.update({("node_agent", k): v for k, v in values.items()})
    return load_settings(env={}, overrides=overrides)


async def _stream(settings: Settings) -> list[tuple[str, Signal]]:
    nc = await nats.connect(settings.message_bus.url, connect_timeout=5)
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        f"{settings.message_bus.subject_prefix}.>", stream=settings.message_bus.stream
    )
    out = []
    while True:
        try:
            msgs = await sub.fetch(200, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            break
        for msg in msgs:
            out.append(((msg.headers or {})["Nats-Msg-Id"], decode_signal(msg.data)))
    await nc.close()
    return out


@contextlib.asynccontextmanager
async def _agent(
    settings: Settings, kubelet_server: KubeletStatsServer, kube: KubeClient, token_file: Path
) -> AsyncIterator[NodeAgent]:
    kubelet = KubeletClient(
        base_url=kubelet_server.url("node-1"), token_file=str(token_file), ca_file=str(kubelet_server.ca_file)
    )
    bus = await open_bus(settings.message_bus)
    agent = NodeAgent(
        settings=settings,
        cluster_id="c1",
        node_name="node-1",
        kubelet=kubelet,
        bus=bus,
        kube=kube,
        boot_id="boot-1",
        clock=lambda: kubelet_server.minutes * 60,  # the trend on the simulated node's own timeline
    )
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await bus.close()
        await kubelet.close()


async def _until(predicate: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        await asyncio.sleep(0.05)


@pytest.fixture
async def world(tmp_path: Path, nats_url: str) -> AsyncIterator[dict[str, Any]]:
    node = SimNode(
        name="node-1",
        memory_available=Falling(start=1200 * MiB, per_minute=25 * MiB),
        pods=[SimPod("shop", "cache-7d9f8-x2k4q", UID, working_set=int(1.9 * GiB), containers=("redis",))],
    )
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    kernel_log = tmp_path / "kern.log"
    kernel_log.write_text("")
    bus = bus_settings(nats_url)
    async with (
        SimCluster(scenario=_pod_scenario(tmp_path / "pods.yaml")) as sim,
        await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig")) as kube,
        KubeletStatsServer([node], token=TOKEN, speed=600) as kubelet_server,  # 10 min a second
    ):
        yield {
            "node": node,
            "kubelet": kubelet_server,
            "kube": kube,
            "token_file": token_file,
            "kernel_log": kernel_log,
            "settings": _settings(bus, kernel_log),
        }
        nc = await nats.connect(nats_url)
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(bus["stream"])
        await nc.close()


async def test_pressure_and_an_oom_kill_reach_the_bus_attributed(world: dict[str, Any]) -> None:
    settings, server = world["settings"], world["kubelet"]
    async with _agent(settings, server, world["kube"], world["token_file"]) as agent:
        # 1200Mi falling 25Mi/min: the threshold (100Mi) is 15 min away near minute 29.
        await _until(lambda: agent.published >= 1, "the pressure warning", timeout=30)
        with world["kernel_log"].open("a") as log:
            log.write("[1234.5] eth0: link up\n")
            log.write(_oom_line("1234.567900"))
        await _until(lambda: agent.published >= 2, "two Signals published")
    stored = dict(await _stream(settings))
    by_reason = {s.reason: s for s in stored.values()}
    pressure = by_reason["NodePressure"]
    assert (
        pressure.object.kind == "Node"
        and pressure.object.name == "node-1"
        and pressure.source == "node-agent"
    )
    assert pressure.severity == "warning" and pressure.labels["signal"] == "memory.available"
    assert "falling 25Mi/min" in pressure.message and "top: shop/cache-7d9f8-x2k4q 1.9Gi" in pressure.message
    oom = by_reason["KernelOOMKill"]
    assert (oom.object.kind, oom.object.namespace, oom.object.name) == ("Pod", "shop", "cache-7d9f8-x2k4q")
    assert oom.container == "redis" and oom.owner is not None and oom.owner.name == "cache-7d9f8"
    assert oom.labels["pod-template-hash"] == "7d9f8" and oom.severity == "critical"
    assert server.unauthorized == 0


async def test_a_restarted_agent_publishes_nothing_twice(world: dict[str, Any]) -> None:
    settings, server = world["settings"], world["kubelet"]
    with world["kernel_log"].open("a") as log:
        for i in range(5):
            log.write(_oom_line(f"{2000 + i}.000001"))
    for _ in range(2):
        async with _agent(settings, server, world["kube"], world["token_file"]) as agent:
            await _until(lambda: agent.published >= 5, "the five records published")
    stored = await _stream(settings)
    kernel = [msg_id for msg_id, s in stored if s.reason == "KernelOOMKill"]
    assert len(kernel) == 5 == len(set(kernel)), kernel  # the second run's ids were the first's


async def test_a_kubelet_that_refuses_or_answers_garbage_is_said_not_fatal(world: dict[str, Any]) -> None:
    settings, server = world["settings"], world["kubelet"]
    world["token_file"].write_text("wrong-token")
    async with _agent(settings, server, world["kube"], world["token_file"]) as agent:
        await _until(lambda: server.unauthorized >= 2, "the kubelet refused twice")
        assert (
            agent.last_summary is None
            and "401" in agent.kubelet_error
            and "nodes/stats" in agent.kubelet_error
        )
        world["token_file"].write_text(TOKEN)  # a rotated token is read again on the next poll
        await _until(lambda: agent.last_summary is not None, "a summary with the new token")
        world["node"].fault = "garbage"
        await _until(lambda: "not understood" in agent.kubelet_error, "garbage reported")
        world["node"].fault = "500"
        await _until(lambda: "500" in agent.kubelet_error, "a 500 reported")


async def test_a_reader_that_dies_is_on_health_live(world: dict[str, Any]) -> None:
    settings = world["settings"].model_copy(
        update={
            "node_agent": world["settings"].node_agent.model_copy(
                update={"kernel_logs": [str(world["kernel_log"])], "reader_stall": timedelta(seconds=1)}
            )
        }
    )
    async with _agent(settings, world["kubelet"], world["kube"], world["token_file"]) as agent:
        await _until(lambda: bool(agent.reader_tasks) and not agent.stalled_readers(), "a healthy reader")
        agent.reader_tasks[0].cancel()  # the reader's task ends, as a crash would end it
        await _until(lambda: bool(agent.stalled_readers()), "the stopped reader reported")
        assert "reader stopped" in agent.stalled_readers()[0]


async def test_a_claim_s_volume_nearly_full_is_said_once(world: dict[str, Any]) -> None:
    world["node"].pods.append(
        SimPod(
            "db",
            "postgres-0",
            "22222222-0000-4000-8000-000000000001",
            claims=(("data", "data-postgres-0", 10 * GiB, 500 * MiB),),
        )
    )
    settings, server = world["settings"], world["kubelet"]
    async with _agent(settings, server, world["kube"], world["token_file"]) as agent:
        await _until(lambda: agent.published >= 1, "the full volume reported")
        polls = server.requests
        await _until(lambda: server.requests >= polls + 5, "five more polls")
    full = [s for _, s in await _stream(settings) if s.reason == "VolumeFull"]
    assert len(full) == 1, full  # said once for the episode, not every poll
    (signal,) = full
    assert (signal.object.kind, signal.object.namespace, signal.object.name) == (
        "PersistentVolumeClaim",
        "db",
        "data-postgres-0",
    )
    assert signal.severity == "critical" and "4.9% of 10Gi space left" in signal.message


async def test_a_throttled_container_is_said_once(world: dict[str, Any]) -> None:
    world["node"].pods.append(
        SimPod(
            "shop", "render-1", "33333333-0000-4000-8000-000000000001", containers=("render",), throttled=0.8
        )
    )
    settings, server = world["settings"], world["kubelet"]
    async with _agent(settings, server, world["kube"], world["token_file"]) as agent:
        await _until(lambda: agent.published >= 1 and agent.cadvisor_error == "", "a throttling Signal")
        polls = server.requests
        await _until(lambda: server.requests >= polls + 6, "more polls")
    throttled = [s for _, s in await _stream(settings) if s.reason == "CPUThrottled"]
    assert len(throttled) == 1, throttled
    (signal,) = throttled
    assert (signal.object.kind, signal.object.namespace, signal.object.name, signal.container) == (
        "Pod",
        "shop",
        "render-1",
        "render",
    )
    assert "throttled in 80% of its CPU periods" in signal.message
