"""The Watcher against the sim's ``demo`` scenario: the six failures reach the bus as Signals with
the right reasons and owners, and a pod that recovers gets ``resolved=True`` Signals."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import nats
import nats.errors

from aetherius.bus import open_bus
from aetherius.kube import KubeClient
from aetherius.signals import ObjectRef, Signal, decode_signal
from aetherius.sim import SimCluster
from aetherius.watch.watcher import Watcher
from tests.watch.harness import CLUSTER, Harness, bus_settings, watcher_settings


@contextlib.asynccontextmanager
async def demo_watcher(tmp_path: Path, nats_url: str) -> AsyncIterator[tuple[SimCluster, Harness]]:
    async with SimCluster(scenario="demo", history_size=50_000, bookmark_interval=0.5) as sim:
        settings = watcher_settings(bus_settings(nats_url), page_size=50, buffer_size=256)
        h = Harness(sim, settings, sim.write_kubeconfig(tmp_path / "kubeconfig"))
        try:
            h.client = await KubeClient.from_kubeconfig(h.kubeconfig)
            h.bus = await open_bus(settings.message_bus)
            h.watcher = Watcher(client=h.client, bus=h.bus, settings=settings, cluster_id=CLUSTER)
            await h.watcher.start()
            deadline = time.monotonic() + 20
            while not h.watcher.synced:
                assert time.monotonic() < deadline, "the watcher never synced"
                await asyncio.sleep(0.05)
            yield sim, h
        finally:
            await h.stop()
            await h.cleanup()


async def read_signals(h: Harness) -> list[Signal]:
    settings = h.settings.message_bus
    nc = await nats.connect(settings.url)
    try:
        sub = await nc.jetstream().pull_subscribe(f"{settings.subject_prefix}.>", stream=settings.stream)
        out: list[Signal] = []
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                return out
            for msg in msgs:
                out.append(decode_signal(msg.data))
                await msg.ack()
    finally:
        await nc.close()


async def wait_for(
    h: Harness, done: Callable[[list[Signal]], bool], *, timeout: float = 30.0
) -> list[Signal]:
    """Until ``done(signals on the bus)``, re-reading the stream (the watcher acks asynchronously)."""
    deadline = time.monotonic() + timeout
    signals: list[Signal] = []
    while time.monotonic() < deadline:
        signals = await read_signals(h)
        if done(signals):
            return signals
        await asyncio.sleep(0.3)
    return signals


def deployment(namespace: str, name: str) -> ObjectRef:
    return ObjectRef(kind="Deployment", name=name, namespace=namespace)


# (source, namespace, pod name prefix, reason, owning Deployment)
DEMO_FAILURES = [
    ("pod", "shop", "checkout-", "OOMKilled", "checkout"),
    ("pod", "shop", "checkout-", "CrashLoopBackOff", "checkout"),
    ("pod", "shop", "frontend-6f8d4c7b9a-", "ErrImagePull", "frontend"),
    ("pod", "shop", "frontend-6f8d4c7b9a-", "ImagePullBackOff", "frontend"),
    ("pod", "analytics", "report-builder-", "Unschedulable", "report-builder"),
    ("event", "analytics", "report-builder-", "FailedScheduling", "report-builder"),
    ("pod", "shop", "payments-", "CreateContainerConfigError", "payments"),
    ("event", "web", "blog-", "Unhealthy", "blog"),
    ("pod", "shop", "orders-", "Error", "orders"),
    ("pod", "shop", "orders-", "CrashLoopBackOff", "orders"),
]


def _matches(signals: list[Signal], source: str, namespace: str, prefix: str, reason: str) -> list[Signal]:
    return [
        s
        for s in signals
        if s.source == source
        and s.reason == reason
        and s.object.kind == "Pod"
        and s.object.namespace == namespace
        and s.object.name.startswith(prefix)
        and not s.resolved
    ]


def _all_failures_seen(signals: list[Signal]) -> bool:
    return all(_matches(signals, src, ns, prefix, reason) for src, ns, prefix, reason, _ in DEMO_FAILURES)


async def test_demo_failures_reach_the_bus_with_reasons_and_owners(tmp_path: Path, nats_url: str) -> None:
    async with demo_watcher(tmp_path, nats_url) as (sim, h):
        sim.timeline.run_to_end()
        signals = await wait_for(h, _all_failures_seen)
        for source, namespace, prefix, reason, owner in DEMO_FAILURES:
            found = _matches(signals, source, namespace, prefix, reason)
            assert found, (
                f"no {source} Signal {reason} for {namespace}/{prefix}*: {sorted((s.source, s.reason, s.object.name) for s in signals)}"
            )
            assert {s.owner for s in found} == {deployment(namespace, owner)}, (reason, found[0])
            assert all(s.cluster_id == CLUSTER for s in found)
        oom = _matches(signals, "pod", "shop", "checkout-", "OOMKilled")
        assert all(s.severity == "critical" and s.container == "checkout" for s in oom)
        assert "exit code 137" in oom[0].message
        # NB: the crash loop repeats: one Signal per restart, never the same occurrence twice.
        ids = [s.msg_id for s in signals]
        assert len(ids) == len(set(ids))
        assert len(_matches(signals, "pod", "shop", "orders-", "Error")) > 1
        # the healthy workloads raise nothing
        assert not [s for s in signals if s.object.name.startswith(("cart-", "coredns-", "kube-proxy-"))]
        # never Ready: never resolved
        never_ready = ("blog-", "payments-", "frontend-6f8d4c7b9a-", "report-builder-")
        assert not [s for s in signals if s.resolved and s.object.name.startswith(never_ready)]
        # a crash-looping container is Ready between its crashes: each time, its open failures
        # resolve (the orchestrator's healthy clock waits that out) and the next crash is a new
        # occurrence, so no resolution ever hides a later failure
        failures = {(f.dedup_key, f.occurrence): f for f in signals if not f.resolved}
        for r in (s for s in signals if s.resolved):
            failure = failures[(r.dedup_key.removesuffix(".resolved"), r.occurrence)]
            assert (r.object, r.reason, r.owner) == (failure.object, failure.reason, failure.owner)
            assert int(r.resource_version) >= int(failure.resource_version)
        oom_occurrences = sorted(s.occurrence for s in oom)
        assert oom_occurrences == list(range(1, len(oom) + 1)) and len(oom) > 1


async def test_recovered_pods_get_resolved_signals(tmp_path: Path, nats_url: str) -> None:
    async with demo_watcher(tmp_path, nats_url) as (sim, h):
        sim.timeline.run_to_end()
        assert _all_failures_seen(await wait_for(h, _all_failures_seen)), "not every demo failure seen"
        payments = next(p for p in sim.list("Pod", "shop") if p["metadata"]["name"].startswith("payments-"))
        frontend = next(
            p for p in sim.list("Pod", "shop") if p["metadata"]["name"].startswith("frontend-6f8d4c7b9a-")
        )
        # the ConfigMap appears and the image is fixed: both containers start and become ready
        for pod, container in ((payments, "payments"), (frontend, "frontend")):
            ref = f"shop/{pod['metadata']['name']}"
            sim.timeline.add({"at": sim.timeline.now + 1, "pod": ref, "start": {"container": container}})
        sim.timeline.run_to_end()

        def recovered(signals: list[Signal]) -> bool:
            names = {s.object.name for s in signals if s.resolved}
            return {payments["metadata"]["name"], frontend["metadata"]["name"]} <= names

        signals = await wait_for(h, recovered)
        assert recovered(signals), [s for s in signals if s.resolved]
        resolved = [s for s in signals if s.resolved]
        by_pod: dict[str, list[str]] = {}
        for s in resolved:
            by_pod.setdefault(s.object.name, []).append(s.reason)
        assert by_pod[payments["metadata"]["name"]] == ["CreateContainerConfigError"]
        assert sorted(by_pod[frontend["metadata"]["name"]]) == ["ErrImagePull", "ImagePullBackOff"]
        failures = {(s.dedup_key, s.occurrence): s for s in signals if not s.resolved}
        for s in resolved:
            failure = next(f for f in failures.values() if f.object == s.object and f.reason == s.reason)
            assert s.dedup_key == f"{failure.dedup_key}.resolved"
            assert s.owner == failure.owner
            assert s.owner is not None and s.owner.kind == "Deployment"
            assert s.container == failure.container
        # still failing and never Ready: no resolution
        assert not [s for s in resolved if s.object.name.startswith(("blog-", "report-builder-"))]
