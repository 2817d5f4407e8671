"""The real Alertmanager, end to end, on PostgreSQL: every alert it fires becomes a stored Signal
and an incident with a report.

Debian's ``prometheus-alertmanager`` runs on a free loopback port with a webhook receiver pointing
at the API (served over real HTTP, publishing to NATS JetStream); an ``aetherius orchestrator``
process consumes into a fresh PostgreSQL database and diagnoses against the simulated cluster.
Alerts are fired through Alertmanager's own v2 API. An alert's occurrence is its ``startsAt`` in
seconds, doubled (~3.6e9): on a 32-bit column every one of them used to be lost after a 202.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aetherius.bus import open_bus
from aetherius.compose.app import create_app
from aetherius.config import MessageBusSettings
from aetherius.sim import SimCluster
from aetherius.store import IncidentFilters, Store
from tests.api.conftest import WEBHOOK_TOKEN, make_settings
from tests.api.server import serving
from tests.orchestrator.processes import Replicas, bus_section, write_app_yaml
from tests.services import free_port, wait_for_port
from tests.sim.conftest import pod
from tests.store.databases import migrated_database
from tests.waiting import until

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
CLUSTER = "am-e2e"


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path_factory.mktemp("db")) as url:
        yield url


class Alertmanager:
    """One Alertmanager process of the test's own, clustering off, a webhook to ``webhook_url``."""

    def __init__(self, directory: Path, *, webhook_url: str) -> None:
        assert ALERTMANAGER, "prometheus-alertmanager is not installed: .ci/run installs it"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "route": {
                "receiver": "aetherius",
                "group_by": ["..."],  # every alert its own notification
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "aetherius",
                    "webhook_configs": [
                        {
                            "url": webhook_url,
                            "send_resolved": True,
                            "http_config": {
                                "authorization": {"type": "Bearer", "credentials": WEBHOOK_TOKEN}
                            },
                        }
                    ],
                }
            ],
        }
        path = directory / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        (directory / "data").mkdir()
        self.log = directory / "alertmanager.log"
        self.process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={path}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port("127.0.0.1", self.port, timeout=30)

    def fire(self, alerts: list[dict[str, Any]]) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10)
        assert response.status_code == 200, response.text

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    async with SimCluster() as cluster:
        cluster.create(pod("api-7d9f8c6b5-x2k4q", ns="shop", labels={"app": "api"}))
        yield cluster


def _alert(labels: dict[str, str], summary: str) -> dict[str, Any]:
    return {
        "labels": {"severity": "critical", **labels},
        "annotations": {"summary": summary},
        "startsAt": datetime.now(UTC).isoformat(),
    }


async def test_every_real_alertmanager_alert_becomes_a_stored_signal_on_postgresql(
    tmp_path: Path, pg_url: str, nats_url: str, sim: SimCluster
) -> None:
    section = bus_section(nats_url)
    config = write_app_yaml(tmp_path / "conf", bus=section, database={"url": pg_url}, cluster_id=CLUSTER)
    replicas = Replicas(
        config=config, kubeconfig=sim.write_kubeconfig(tmp_path / "kubeconfig"), directory=tmp_path
    )
    bus = await open_bus(MessageBusSettings.model_validate(section), name="test-alertmanager-api")
    store = await Store.open(pg_url)
    settings = make_settings().model_copy(update={"cluster_id": CLUSTER})
    app = create_app(settings=settings, store=store, bus=bus)
    tag = secrets.token_hex(3)
    alerts = [
        _alert(
            {"alertname": f"PodCrashLooping{tag}", "namespace": "shop", "pod": "api-7d9f8c6b5-x2k4q"},
            "api restarts",
        ),
        _alert({"alertname": f"NamespaceQuota{tag}", "namespace": "shop"}, "quota nearly spent"),
        _alert({"alertname": f"NodeDiskPressure{tag}", "node": "node-1"}, "disk filling up"),
        _alert({"alertname": f"Watchdog{tag}"}, "the alerting pipeline is alive"),
    ]
    alertmanager: Alertmanager | None = None
    try:
        async with serving(app) as api_url:
            alertmanager = Alertmanager(tmp_path, webhook_url=f"{api_url}/webhooks/alertmanager")
            replicas.start(1)
            alertmanager.fire(alerts)

            async def all_reported() -> list[Any] | None:
                page = await store.list_incidents(IncidentFilters(cluster_id=CLUSTER), limit=100)
                found = [i for i in page.items if i.reason.endswith(tag)]
                done = len(found) == len(alerts) and all(i.report_version >= 1 for i in found)
                return found if done else None

            def explain() -> str:
                am_log = alertmanager.log.read_text(errors="replace")[-3000:] if alertmanager else ""
                return f"--- alertmanager\n{am_log}\n{replicas.logs()}"

            found = await until(
                all_reported, timeout=90, what="an incident with a report per alert", explain=explain
            )
    finally:
        if alertmanager is not None:
            alertmanager.stop()
        replicas.stop_all()
        await bus.close()
    try:
        kinds = {i.reason.removesuffix(tag): i.object_kind for i in found}
        assert kinds == {
            "PodCrashLooping": "Pod",
            "NamespaceQuota": "Namespace",
            "NodeDiskPressure": "Node",
            "Watchdog": "Alert",
        }
        assert sum(i.signal_count for i in found) == len(alerts), "each alert stored once"
        for incident in found:
            signals = await store.incident_signals(incident.id)
            assert [s.source for s in signals] == ["alertmanager"]
            assert signals[0].occurrence > 2**31, "startsAt x 2 needs a 64-bit column"
    finally:
        await store.close()
