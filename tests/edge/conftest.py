"""Fixtures for the fleet: a central hub, member clusters served by ``aetherius sim``, edge agents
in process, and a central orchestrator reading every member cluster through its agent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from aetherius.bus.nats import NatsBus
from aetherius.config import Settings
from aetherius.fleet.edge import EdgeAgent, edge_bus
from aetherius.fleet.identity import parse_token
from aetherius.fleet.leaf import sync_sources
from aetherius.kube import KubeClient
from aetherius.orchestrator.process import OrchestratorProcess
from aetherius.sim import SimCluster
from aetherius.store import Store
from tests.hub import Hub
from tests.leaf import LeafServer
from tests.store.databases import migrated_database

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def fleet_settings(hub: Hub, *, mode: str, **sections: Any) -> Settings:
    document: dict[str, Any] = {
        "message_bus": hub.settings(),
        "metrics": {"enabled": False},
        "health": {"port": 0},
        "fleet": {"mode": mode, "gateway_timeout": "3s"},
        "watcher": {"heartbeat_interval": "0.3s", "checkpoint_interval": "0.2s"},
        "orchestrator": {"pull_timeout": "0.3s", "recheck_interval": "1h", "resolve_after": "1h"},
    }
    for key, value in sections.items():
        document[key] = {**document.get(key, {}), **value}
    return Settings.model_validate(document)


def _seconds(text: str) -> timedelta:
    return timedelta(seconds=float(text.rstrip("s")))


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    central = Hub(tmp_path / "hub")
    central.directory.mkdir()
    central.start()
    try:
        yield central
    finally:
        central.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet_db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    with migrated_database(request.param, tmp_path / "db") as url:
        yield url


@dataclass
class Member:
    name: str
    sim: SimCluster
    client: KubeClient
    bus: NatsBus
    agent: EdgeAgent
    leaf: LeafServer | None = None  # leaf mode: the member's own nats-server

    async def stop(self) -> None:
        await self.agent.stop()
        await self.bus.close()
        if self.leaf is not None:
            self.leaf.stop()


@dataclass
class Fleet:
    hub: Hub
    tmp: Path
    members: dict[str, Member] = field(default_factory=dict)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def sim(self, name: str, scenario: str | None) -> SimCluster:
        path = SCENARIOS / scenario / "snapshot.yaml" if scenario else None
        sim = await self._stack.enter_async_context(SimCluster(path))
        return sim

    async def join(
        self,
        name: str,
        *,
        scenario: str | None = None,
        sim: SimCluster | None = None,
        reconnect_delay: str = "0.2s",
        url: str | None = None,
        leaf_domain: str = "",
    ) -> Member:
        """A member cluster with its agent connected, watching and answering.

        With ``leaf_domain`` it is a leaf member: its own leaf server is started, central's
        stream sources it (as ``aetherius cluster add --leaf-domain`` makes it), and the agent
        talks to that server only.
        """
        token = self.hub.add(name, leaf_domain=leaf_domain)
        await self.hub.reload()
        leaf = None
        if leaf_domain:
            leaf = LeafServer(
                self.tmp / f"leaf-{name}",
                hub=self.hub,
                credential=self.hub.credentials[name],
                domain=leaf_domain,
            )
            leaf.start()
            await self.sync_sources()
            url = leaf.url
        sim = sim or await self.sim(name, scenario)
        client = await KubeClient.from_kubeconfig(sim.write_kubeconfig(self.tmp / f"{name}.kubeconfig"))
        self._stack.push_async_callback(client.close)
        cluster, seed = parse_token(token)
        settings = fleet_settings(self.hub, mode="edge", fleet={"leaf_domain": leaf_domain})
        bus = settings.message_bus.model_copy(
            update={"reconnect_delay": _seconds(reconnect_delay), "url": url or settings.message_bus.url}
        )
        settings = settings.model_copy(update={"message_bus": bus})
        bus = edge_bus(settings, cluster=cluster, seed=seed)
        await bus.connect()
        agent = EdgeAgent(settings, client=client, bus=bus, cluster=cluster)
        await agent.start()
        member = Member(name=name, sim=sim, client=client, bus=bus, agent=agent, leaf=leaf)
        self.members[name] = member
        return member

    async def sync_sources(self) -> None:
        """Central's stream sources set from the registry's leaf members, as central's user."""
        bus = self.hub.central_bus(name="sources")
        try:
            await bus.connect()
            await sync_sources(bus, self.hub.registry.records())
        finally:
            await bus.close()

    async def close(self) -> None:
        for member in self.members.values():
            with contextlib.suppress(Exception):
                await member.stop()
        await self._stack.aclose()


@pytest.fixture
async def fleet(hub: Hub, tmp_path: Path) -> AsyncIterator[Fleet]:
    await hub.provision()
    members = Fleet(hub=hub, tmp=tmp_path)
    try:
        yield members
    finally:
        await members.close()


@dataclass
class Central:
    process: OrchestratorProcess
    store: Store
    bus: NatsBus
    task: asyncio.Task[None]
    stop: asyncio.Event


@pytest.fixture
def gateway_timeout() -> str:
    """How long central waits for an agent's answer: the product's default, so that a suite
    loading the machine does not turn slow reads into inconclusive diagnoses (a test of the
    timeout itself overrides this fixture with a short one)."""
    return "10s"


@pytest.fixture
async def central(hub: Hub, fleet_db: str, tmp_path: Path, gateway_timeout: str) -> AsyncIterator[Central]:
    """The central orchestrator (mode central) over the hub; its own cluster is an empty sim."""
    settings = fleet_settings(
        hub, mode="central", database={"url": fleet_db}, fleet={"gateway_timeout": gateway_timeout}
    )
    store = await Store.open(fleet_db)
    bus = hub.central_bus(name="central-orchestrator")
    await bus.connect()
    async with SimCluster() as own:
        kube = await KubeClient.from_kubeconfig(own.write_kubeconfig(tmp_path / "central.kubeconfig"))
        process = OrchestratorProcess(settings, store=store, bus=bus, kube=kube)
        stop = asyncio.Event()
        task = asyncio.create_task(process.run(stop))
        try:
            yield Central(process=process, store=store, bus=bus, task=task, stop=stop)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
            await kube.close()
            await bus.close()
            await store.close()
