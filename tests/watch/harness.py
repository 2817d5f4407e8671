"""A real sim, a real KubeClient over HTTP, a real bus, and a Watcher between them.

``expected`` is built from what the sim says it emitted (its ledger, plus the count each change
set); ``published()`` reads back what really reached the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import nats.js.errors

from aetherius.bus import open_bus
from aetherius.bus.base import StatefulBus
from aetherius.config import Settings, load_settings
from aetherius.kube import KubeClient
from aetherius.signals import dedup_key
from aetherius.sim import SimCluster
from aetherius.watch.watcher import Watcher

CLUSTER = "test-cluster"


def event_obj(
    name: str, *, namespace: str = "shop", count: int = 1, reason: str = "BackOff"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": "Pod", "namespace": namespace, "name": f"pod-{name}", "apiVersion": "v1"},
        "reason": reason,
        "message": f"Back-off restarting failed container app in pod pod-{name}",
        "type": "Warning",
        "count": count,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "source": {"component": "kubelet", "host": "node-1"},
    }


def bus_settings(url: str) -> dict[str, Any]:
    suffix = secrets.token_hex(4)
    return {
        "url": url,
        "stream": f"WT_{suffix}",
        "subject_prefix": f"wt{suffix}.signals",
        "kv_bucket": f"wt_{suffix}",
        "publish_timeout": "2s",
        "reconnect_delay": "0.2s",
        "max_reconnect_attempts": -1,
    }


def watcher_settings(bus: dict[str, Any], **watcher: Any) -> Settings:
    values: dict[str, Any] = {
        "page_size": 7,
        "read_inactivity_timeout": "3s",
        "watch_timeout_min": "30s",
        "watch_timeout_max": "40s",
        "checkpoint_interval": "0.2s",
        "buffer_size": 64,
    }
    values.update(watcher)
    overrides = {("message_bus", k): v for k, v in bus.items()}
    overrides.update({("watcher", k): v for k, v in values.items()})
    return load_settings(env={}, overrides=overrides)


class Harness:
    def __init__(self, sim: SimCluster, settings: Settings, kubeconfig: Path) -> None:
        self.sim = sim
        self.settings = settings
        self.kubeconfig = kubeconfig
        self.counts: dict[int, int] = {}  # rv -> the Event count that change set
        self.client: KubeClient | None = None
        self.bus: StatefulBus | None = None
        self.watcher: Watcher | None = None

    def _expect(self, obj: dict[str, Any]) -> None:
        self.counts[int(obj["metadata"]["resourceVersion"])] = int(obj["count"])

    def create(self, name: str, **kwargs: Any) -> dict[str, Any]:
        obj = self.sim.create(event_obj(name, **kwargs))
        self._expect(obj)
        return obj

    def bump(self, name: str, *, namespace: str = "shop") -> dict[str, Any]:
        current = self.sim.get("Event", namespace, name)
        obj = self.sim.patch("Event", namespace, name, {"count": int(current["count"]) + 1})
        self._expect(obj)
        return obj

    def expected(self) -> set[str]:
        """One msg id per Event change the sim's ledger says it emitted (uid + that change's count)."""
        out = set()
        for entry in self.sim.ledger:
            if entry.kind == "Event" and entry.type in ("ADDED", "MODIFIED"):
                key = dedup_key(CLUSTER, "event", entry.namespace, entry.uid)
                out.add(f"{key}:{self.counts[entry.rv]}")
        return out

    async def start(self, **kwargs: Any) -> Watcher:
        self.client = await KubeClient.from_kubeconfig(self.kubeconfig, **kwargs)
        self.bus = await open_bus(self.settings.message_bus)
        self.watcher = Watcher(
            client=self.client,
            bus=self.bus,
            settings=self.settings,
            cluster_id=CLUSTER,
            resources=("events",),
        )
        await self.watcher.start()
        return self.watcher

    async def caught_up(self, *, timeout: float = 20.0) -> None:
        """Until the watcher's acknowledged cursor is at the sim's latest Event change."""
        assert self.watcher is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = max((e.rv for e in self.sim.ledger if e.kind == "Event"), default=0)
            cursor = self.watcher.cursors.get("events._all")
            if cursor and int(cursor) >= last and self.watcher.queue.empty():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"watcher did not catch up: cursor {self.watcher.cursors}")

    async def watching(self, *, timeout: float = 20.0) -> None:
        """Until the watcher has a watch open on the sim (it reconnects after every fault): a
        live one, not one a fault is still ending."""
        deadline = time.monotonic() + timeout
        while not [c for c in self.sim.faults.open_watches if not (c.close or c.gone)]:
            if time.monotonic() >= deadline:
                raise AssertionError(f"the watcher opened no watch within {timeout}s")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Stop the watcher (flushed or not: ``_finish`` compares what reached the bus)."""
        async with _deadline(60, "stopping the watcher and its client"):
            if self.watcher is not None:
                await self.watcher.stop(flush_timeout=10)
            if self.client is not None:
                await self.client.close()

    async def published(self) -> list[str]:
        """Every msg id in the stream (duplicates included: the assertion is on the list)."""
        async with _deadline(60, "reading back the stream"):
            return await self._published()

    async def _published(self) -> list[str]:
        settings = self.settings.message_bus
        nc = await nats.connect(settings.url, connect_timeout=5, max_reconnect_attempts=3)
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{settings.subject_prefix}.>", stream=settings.stream)
        ids: list[str] = []
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            for msg in msgs:
                ids.append((msg.headers or {})["Nats-Msg-Id"])
                await msg.ack()
        await nc.close()
        return ids

    async def cleanup(self) -> None:
        async with _deadline(30, "deleting the test's streams"):
            await self._cleanup()

    async def _cleanup(self) -> None:
        with contextlib.suppress(Exception):
            if self.bus is not None:
                await self.bus.close()
        settings = self.settings.message_bus
        with contextlib.suppress(Exception):
            nc = await nats.connect(settings.url, max_reconnect_attempts=1)
            js = nc.jetstream()
            for stream in (settings.stream, f"{settings.stream}_DEAD", f"KV_{settings.kv_bucket}"):
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_stream(stream)
            await nc.close()


@contextlib.asynccontextmanager
async def _deadline(seconds: float, what: str) -> AsyncIterator[None]:
    """A bounded wait that fails with what it was waiting for, not the suite's global timeout."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"{what} took longer than {seconds}s") from None


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path, nats_url: str, *, history_size: int = 10_000, **watcher: Any
) -> AsyncIterator[Harness]:
    async with SimCluster(history_size=history_size, bookmark_interval=0.5) as sim:
        settings = watcher_settings(bus_settings(nats_url), **watcher)
        h = Harness(sim, settings, sim.write_kubeconfig(tmp_path / "kubeconfig"))
        try:
            yield h
        finally:
            await h.stop()
            await h.cleanup()


def assert_exactly_once(expected: set[str], published: list[str]) -> None:
    duplicates = sorted({m for m in published if published.count(m) > 1})
    missing = sorted(expected - set(published))
    extra = sorted(set(published) - expected)
    assert not duplicates, f"duplicated: {duplicates[:5]}"
    assert not missing, f"lost {len(missing)}: {missing[:5]}"
    assert not extra, f"unexpected: {extra[:5]}"


__all__ = ["CLUSTER", "Harness", "assert_exactly_once", "event_obj", "harness", "timedelta"]
