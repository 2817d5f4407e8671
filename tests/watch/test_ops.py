"""Health and metrics endpoints of the watch role, over HTTP, against the sim and a real bus."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from aetherius.bus import MemoryBus
from aetherius.config import HealthSettings, MetricsSettings, load_settings
from aetherius.kube import KubeClient
from aetherius.ops.health import CheckResult, HealthServer
from aetherius.ops.metrics import MetricsServer
from aetherius.sim import SimCluster
from aetherius.watch.service import register_watcher_checks
from aetherius.watch.watcher import Watcher
from tests.watch.harness import event_obj


async def test_ready_live_and_metrics_over_http(tmp_path: Path) -> None:
    async with SimCluster() as sim:
        sim.create(event_obj("e1"))
        client = await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kc"))
        bus = MemoryBus()
        settings = load_settings(env={})
        watcher = Watcher(client=client, bus=bus, settings=settings, cluster_id="c1")
        health = HealthServer(HealthSettings(port=0), host="127.0.0.1")
        register_watcher_checks(health, watcher=watcher, bus=bus)
        metrics = MetricsServer(MetricsSettings(port=0), host="127.0.0.1")
        await health.start()
        await metrics.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{health.port}") as http:
                before = await http.get("/health/ready")
                assert before.status_code == 503
                assert before.json()["checks"]["initial_list"]["healthy"] is False
                assert before.json()["checks"]["api_server"]["healthy"] is True
                await watcher.start()
                for _ in range(100):
                    ready = await http.get("/health/ready")
                    if ready.status_code == 200:
                        break
                    await asyncio.sleep(0.05)
                assert ready.status_code == 200, ready.text
                assert set(ready.json()["checks"]) == {
                    "api_server",
                    "self_pod",
                    "dependencies",
                    "initial_list",
                }
                live = await http.get("/health/live")
                assert live.status_code == 200 and live.json()["healthy"] is True
                await bus.close()
                down = await http.get("/health/ready")
                assert down.status_code == 503 and down.json()["checks"]["dependencies"]["healthy"] is False
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"http://127.0.0.1:{metrics.port}/metrics")).text
            for family in (
                "aetherius_signals_published_total",
                "aetherius_watch_relists_total",
                "aetherius_bus_publish_seconds",
                "aetherius_watch_queue_depth",
                "aetherius_kube_requests_total",
            ):
                assert family in text
            assert 'aetherius_kube_requests_total{code="200",verb="GET"}' in text
        finally:
            await watcher.stop(flush_timeout=1)
            await client.close()
            await health.stop()
            await metrics.stop()


async def test_a_broken_check_is_unhealthy_not_a_500() -> None:
    health = HealthServer(HealthSettings(port=0), host="127.0.0.1", check_timeout=0.2)

    async def broken() -> CheckResult:
        raise RuntimeError("boom")

    async def fine() -> CheckResult:
        return CheckResult(True, "ok")

    health.add_readiness("broken", broken)
    health.add_readiness("fine", fine)
    await health.start()
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{health.port}/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["broken"] == {
            "healthy": False,
            "duration_ms": body["checks"]["broken"]["duration_ms"],
            "message": "RuntimeError: boom",
        }
        assert body["checks"]["fine"]["healthy"] is True
    finally:
        await health.stop()
