"""``aetherius orchestrator`` serves its probes and metrics over HTTP on the configured ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from aetherius.sim import SimCluster
from tests.orchestrator.processes import Replicas, bus_section, write_app_yaml
from tests.services import free_port
from tests.store.databases import migrated_database


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path_factory.mktemp("db")) as url:
        yield url


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


async def test_orchestrator_serves_health_and_metrics(
    tmp_path: Path, pg_url: str, nats_url: str, redis_url: str
) -> None:
    health_port, metrics_port = free_port(), free_port()
    async with SimCluster() as sim:
        config = write_app_yaml(
            tmp_path / "conf",
            bus=bus_section(nats_url),
            database={"url": pg_url},
            redis={"url": redis_url},
            health={"port": health_port},
            metrics={"enabled": True, "port": metrics_port},
        )
        replicas = Replicas(
            config=config, kubeconfig=sim.write_kubeconfig(tmp_path / "kubeconfig"), directory=tmp_path
        )
        replicas.start(1)
        try:
            async with aiohttp.ClientSession() as session:
                deadline = time.monotonic() + 60
                ready: tuple[int, str] = (0, "")
                while time.monotonic() < deadline:
                    try:
                        ready = await _get(session, f"http://127.0.0.1:{health_port}/health/ready")
                    except aiohttp.ClientConnectionError:
                        ready = (0, "")
                    if ready[0] == 200:
                        break
                    await asyncio.sleep(0.2)
                assert ready[0] == 200, replicas.logs()
                for check in ('"store"', '"bus"', '"api_server"'):
                    assert check in ready[1]
                live = await _get(session, f"http://127.0.0.1:{health_port}/health/live")
                assert live[0] == 200 and '"consumer"' in live[1]
                metrics = await _get(session, f"http://127.0.0.1:{metrics_port}/metrics")
                assert metrics[0] == 200 and "aetherius_orchestrator_signals_total" in metrics[1]
                await sim.stop()  # the API server is gone: not ready, still live
                unready = await _get(session, f"http://127.0.0.1:{health_port}/health/ready")
                assert unready[0] == 503 and '"api_server": {"healthy": false' in unready[1].replace("\n", "")
                live = await _get(session, f"http://127.0.0.1:{health_port}/health/live")
                assert live[0] == 200
        finally:
            codes = replicas.stop_all()
    assert codes == [0], replicas.logs()
