from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aetherius.kube import KubeClient
from aetherius.sim import SimCluster, SimHandle


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def pod(
    name: str,
    *,
    ns: str = "shop",
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    node: str = "node-1",
    containers: tuple[str, ...] = ("app",),
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": c, "image": f"registry.local/{c}:1"} for c in containers],
        },
        "status": {"phase": phase},
    }


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    async with SimCluster(history_size=50, bookmark_interval=0.2) as cluster:
        cluster.create(namespace("shop"))
        cluster.create(namespace("web"))
        yield cluster


@pytest.fixture
async def kube(sim: SimCluster, tmp_path: Path) -> AsyncIterator[KubeClient]:
    client = await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig"))
    async with client:
        yield client


@pytest.fixture
async def http(sim: SimCluster) -> AsyncIterator[aiohttp.ClientSession]:
    """A raw session for the write verbs (KubeClient is read-only by design)."""
    async with aiohttp.ClientSession(base_url=sim.url) as session:
        yield session


@pytest.fixture
def sim_thread() -> Iterator[SimHandle]:
    handle = SimCluster.start_in_thread(history_size=50, bookmark_interval=0.2)
    try:
        handle.sim.create(namespace("shop"))
        yield handle
    finally:
        handle.stop()
