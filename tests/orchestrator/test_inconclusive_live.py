"""An incident diagnosed too early (Unknown) gets its root cause: on the next crash, or from the
re-check when no Signal comes.

The demo's sim before its timeline plays: the checkout Signal arrives while the cluster shows no
failure yet, so the first report is Unknown. The timeline then plays (the crash loop and its OOM
kills appear in the cluster), no further Signal is sent, and the resolver's periodic re-check
re-diagnoses the incident live: a second report version with the real root cause. With shop/orders,
the next crash's Signal does the same at once; and a diagnosis landing while the crash loop runs
again between two crashes is not fooled.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from aetherius.config import OrchestratorSettings
from aetherius.gateway import LiveBackend
from aetherius.gateway.readers import ClusterReaders
from aetherius.kube import KubeClient
from aetherius.orchestrator.cooldown import MemoryCooldown
from aetherius.orchestrator.diagnose import EngineDiagnoser
from aetherius.orchestrator.inconclusive import InconclusiveRetry
from aetherius.orchestrator.ratelimit import MemoryRateLimiter
from aetherius.orchestrator.resolver import Resolver
from aetherius.orchestrator.service import Orchestrator, Outcome
from aetherius.orchestrator.storage import StoreRepository
from aetherius.signals import Signal
from aetherius.sim import SimCluster
from aetherius.store import Store
from tests.orchestrator.factories import pod_signal
from tests.orchestrator.test_diagnose import store as store


def _orchestrator(store: Store, kube: KubeClient) -> Orchestrator:
    repository = StoreRepository(store)
    return Orchestrator(
        repository=repository,
        diagnoser=EngineDiagnoser(
            ClusterReaders.single(LiveBackend(kube, cluster="demo"), cluster_id=None), repository=repository
        ),
        cooldown=MemoryCooldown(),
        limiter=MemoryRateLimiter(per_minute=6000, burst=100),
        settings=OrchestratorSettings(),
    )


async def test_unknown_at_first_then_diagnosed_by_the_recheck(store: Store, tmp_path: Path) -> None:
    async with (
        SimCluster("demo") as sim,
        await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig")) as kube,
    ):
        orch = _orchestrator(store, kube)
        repository = orch.repository
        clock = [0.0]
        base = orch.clock

        def later() -> datetime:
            return base() + timedelta(seconds=clock[0])

        resolver = Resolver(
            repository=repository,
            probe=None,
            resolve_after=timedelta(minutes=10),
            recheck_interval=timedelta(seconds=60),
            health=orch.health,
            retry=InconclusiveRetry(orch, interval=timedelta(seconds=60), clock=later),
            clock=later,
        )
        first = await orch.handle(
            pod_signal(
                reason="OOMKilled",
                rs="checkout-5d8f7c9b6",
                pod="checkout-5d8f7c9b6-q7x2m",
                container="checkout",
                cluster="demo",
            )
        )
        assert first.incident_id is not None
        incident_id = int(first.incident_id)
        assert (await store.get_incident(incident_id)).root_cause == "Unknown"
        await resolver.sweep()
        sim.timeline.advance(90)  # the failure appears in the cluster; no Signal is sent
        clock[0] = 60.0
        await resolver.sweep()
    stored = await store.get_incident(incident_id)
    assert stored.root_cause == "OutOfMemory"
    reports = await store.list_reports(incident_id)
    assert sorted(r.version for r in reports) == [1, 2]
    assert reports[0].document["evidence"], "the re-check's report carries its evidence"
    assert await store.list_audit(incident_id=incident_id), "its reads are audited under the incident"


def _orders_crash(occurrence: int) -> Signal:
    return pod_signal(
        reason="CrashLoopBackOff",
        rs="orders-84b7c6d9f5",
        pod="orders-84b7c6d9f5-f0x65",
        container="orders",
        cluster="demo",
        severity="critical",
        occurrence=occurrence,
    )


async def test_a_crash_loop_diagnosed_while_it_runs_again_names_its_cause(
    store: Store, tmp_path: Path
) -> None:
    """shop/orders between its first two crashes: running, ready, restarted once; the dead
    instance's log says "connection refused", and that is the root cause, not Unknown."""
    async with (
        SimCluster("demo") as sim,
        await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig")) as kube,
    ):
        orch = _orchestrator(store, kube)
        sim.timeline.advance(16)  # crashed at 5 s, restarted at 15 s, crashes again at 18 s
        pod = sim.find("Pod", "shop", "orders-84b7c6d9f5-f0x65")
        assert pod is not None
        (status,) = pod["status"]["containerStatuses"]
        assert (status["restartCount"], "running" in status["state"]) == (1, True)
        handled = await orch.handle(_orders_crash(1))
    assert handled.incident_id is not None
    stored = await store.get_incident(int(handled.incident_id))
    assert stored.root_cause == "DependencyUnavailable"


async def test_unknown_at_first_then_diagnosed_on_the_next_crash(store: Store, tmp_path: Path) -> None:
    """The first Signal is diagnosed before the cluster shows the crash (Unknown); the next crash's
    Signal re-diagnoses it at once, no timer needed: a second version with the real cause."""
    async with (
        SimCluster("demo") as sim,
        await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig")) as kube,
    ):
        orch = _orchestrator(store, kube)
        sim.timeline.advance(4)  # started at 2 s, first crash at 5 s
        first = await orch.handle(_orders_crash(1))
        assert first.incident_id is not None
        incident_id = int(first.incident_id)
        assert (await store.get_incident(incident_id)).root_cause == "Unknown"
        sim.timeline.advance(16)  # crashed twice since
        again = await orch.handle(_orders_crash(2))
    assert (again.outcome, again.report_version) == (Outcome.DIAGNOSED, 2)
    assert (await store.get_incident(incident_id)).root_cause == "DependencyUnavailable"
