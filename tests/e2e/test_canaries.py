"""Seventy credential canaries, planted everywhere a cluster or a sender can put text, and not one
comes out: not in ``aetherius diagnose`` (text and JSON, snapshot and live), not in the file
``aetherius snapshot`` writes, not in a Signal, the store, the API, the dashboard or a
notification.

The canaries sit in a Pod's env (by content, and plain values under names that say "secret"),
args (a value split from its flag), command, probe headers and URL, lifecycle hook, annotations,
its container messages, seventy Events about it, its logs (current and previous), and in an
Alertmanager alert's labels and annotations.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import pytest
import yaml

from aetherius.bus.memory import MemoryBus
from aetherius.compose.app import create_app
from aetherius.config import NotificationSettings, NotificationSinkSettings, OrchestratorSettings
from aetherius.gateway import LiveBackend
from aetherius.gateway.readers import ClusterReaders
from aetherius.kube import KubeClient
from aetherius.orchestrator.consumer import Consumer
from aetherius.orchestrator.cooldown import MemoryCooldown
from aetherius.orchestrator.diagnose import EngineDiagnoser
from aetherius.orchestrator.ratelimit import MemoryRateLimiter
from aetherius.orchestrator.service import Orchestrator
from aetherius.orchestrator.storage import StoreRepository
from aetherius.reports.dispatcher import NotificationDispatcher
from aetherius.signals import encode_signal
from aetherius.sim import SimCluster
from aetherius.store import IncidentFilters, Store
from aetherius.watch.derive import Deriver
from aetherius.watch.model import KubeEvent, Pod
from tests.api.conftest import WEBHOOK_TOKEN, make_settings
from tests.receivers import Receiver
from tests.store.databases import migrated_database
from tests.waiting import until
from tests.web.test_sessions import login

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "secrets"
CANARIES: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "canaries.yaml").read_text())
# Plain-looking values under names that say they are credentials: masked by the name alone.
BY_NAME = {
    "DB_PASS": "plainCanaryByName01",
    "SMTP_PWD": "plainCanaryByName02",
    "SLACK_WEBHOOK": "plainCanaryByName03",
    "STRIPE_SK": "plainCanaryByName04",
    "AZURE_STORAGE_CONNECTION_STRING": "plainCanaryByName05",
}
SPLIT_ARG = "plainCanarySplitArg06"
PROBE_HEADER = "plainCanaryHeader07"
SECRETS = [c["secret"] for c in CANARIES] + [*BY_NAME.values(), SPLIT_ARG, PROBE_HEADER]
CLUSTER = "canaries"
POD = "canary-app-7d9f8c6b5-x2k4q"


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _texts(limit: int | None = None) -> list[str]:
    return [c["text"] for c in CANARIES[:limit]]


def _snapshot() -> dict[str, Any]:
    texts = _texts()
    env = [{"name": f"SETTING_{i}", "value": text} for i, text in enumerate(texts)]
    env += [{"name": name, "value": value} for name, value in BY_NAME.items()]
    container = {
        "name": "app",
        "image": "registry.local/shop/canary-app:1.0",
        "env": env,
        "args": ["--db-password", SPLIT_ARG, "--listen", ":8080"],
        "command": ["sh", "-c", texts[40]],
        "livenessProbe": {
            "httpGet": {
                "path": "/healthz?apikey=ProbeKeyCanaryF58",
                "port": 8080,
                "httpHeaders": [{"name": "X-Api-Key", "value": PROBE_HEADER}],
            }
        },
        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", texts[0]]}}},
        "resources": {"limits": {"memory": "256Mi"}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": POD,
            "namespace": "shop",
            "uid": "uid-canary",
            "labels": {"app": "canary-app", "pod-template-hash": "7d9f8c6b5"},
            "annotations": {f"note/{i}": text for i, text in enumerate(texts[:20])},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "canary-app-7d9f8c6b5",
                    "uid": "rs-1",
                    "controller": True,
                }
            ],
        },
        "spec": {"nodeName": "node-1", "containers": [container]},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": False,
                    "restartCount": 7,
                    "image": "registry.local/shop/canary-app:1.0",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": texts[1]}},
                    "lastState": {
                        "terminated": {"reason": "Error", "exitCode": 1, "message": "\n".join(texts[2:12])}
                    },
                }
            ],
        },
    }
    events = [
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{POD}.{i:04x}", "namespace": "shop", "uid": f"ev-{i}"},
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": POD, "uid": "uid-canary"},
            "reason": "BackOff" if i % 2 else "Failed",
            "message": text,
            "type": "Warning",
            "count": 1,
            "firstTimestamp": "2026-12-05T08:00:00Z",
            "lastTimestamp": "2026-12-05T08:00:00Z",
        }
        for i, text in enumerate(texts)
    ]
    logs = [
        {
            "apiVersion": "aetherius.io/v1",
            "kind": "PodLogs",
            "metadata": {"namespace": "shop", "name": POD},
            "container": "app",
            "previous": previous,
            "text": "\n".join(texts) + "\nFATAL exiting\n",
        }
        for previous in (True, False)
    ]
    return {"apiVersion": "v1", "kind": "List", "items": [pod, *events, *logs]}


@pytest.fixture(scope="module")
def snapshot_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("canaries") / "snapshot.json"
    path.write_bytes(orjson.dumps(_snapshot()))
    return path


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path_factory.mktemp("db")) as url:
        yield url


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aetherius", *args], capture_output=True, text=True, check=False, timeout=180
    )


def test_the_corpus_is_planted_everywhere(snapshot_file: Path) -> None:
    planted = snapshot_file.read_text()
    assert all(secret in planted for secret in SECRETS), "the test plants every canary"


def test_no_canary_in_a_snapshot_diagnosis(snapshot_file: Path) -> None:
    for output in ("json", "text"):
        result = _cli("diagnose", "--snapshot", str(snapshot_file), "-o", output)
        assert result.returncode == 0, result.stderr
        assert _leaks(result.stdout + result.stderr) == [], output
    document = json.loads(_cli("diagnose", "--snapshot", str(snapshot_file), "-o", "json").stdout)
    assert any(f["name"] == POD for f in document["findings"]), "the pod was diagnosed, not skipped"


async def test_no_canary_leaves_a_live_cluster(
    snapshot_file: Path, tmp_path: Path, pg_url: str, receiver: Receiver
) -> None:
    async with SimCluster(scenario=snapshot_file) as sim:
        kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
        # aetherius snapshot and a live diagnosis, as a person runs them.
        out = tmp_path / "captured.json"
        captured, live = await asyncio.gather(
            asyncio.to_thread(_cli, "snapshot", "-o", str(out), "--kubeconfig", str(kubeconfig)),
            asyncio.to_thread(_cli, "diagnose", "--kubeconfig", str(kubeconfig), "-o", "json"),
        )
        assert captured.returncode == 0 and live.returncode == 0, captured.stderr + live.stderr
        assert _leaks(out.read_text()) == [], "the snapshot file"
        assert POD in out.read_text() and "PodLogs" in out.read_text()
        assert _leaks(live.stdout) == [], "the live diagnosis"

        # The watcher's Signals, the alert's, the store, the API and the notifications.
        await _through_the_pipeline(sim, kubeconfig, pg_url, receiver)


async def _through_the_pipeline(sim: SimCluster, kubeconfig: Path, pg_url: str, receiver: Receiver) -> None:
    deriver = Deriver(cluster_id=CLUSTER)
    signals = []
    for pod in sim.list("Pod", "shop"):
        signals += deriver.from_pod(msgspec.json.decode(orjson.dumps(pod), type=Pod))
    for event in sim.list("Event", "shop"):
        signal = deriver.from_event(msgspec.json.decode(orjson.dumps(event), type=KubeEvent))
        if signal is not None:
            signals.append(signal)
    assert len(signals) > len(CANARIES)
    assert _leaks("\n".join(encode_signal(s).decode() for s in signals)) == [], "a watcher Signal"

    notifications = NotificationSettings(
        sinks=[
            NotificationSinkSettings(name="chat", type="slack", url=f"{receiver.url}/slack"),
        ],
        wait_for_report=0,
        base_backoff=0.05,
        max_backoff=0.2,
        request_timeout=5,
    )
    bus = MemoryBus(ack_wait=30)
    store = await Store.open(pg_url, sinks=notifications.sinks, wait_for_report=0)
    stop = asyncio.Event()
    try:
        settings = make_settings().model_copy(update={"cluster_id": CLUSTER})
        app = create_app(settings=settings, store=store, bus=bus)
        texts = _texts()
        alert = {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "CanaryAlert", "namespace": "shop", "pod": POD, "dsn": texts[5]},
                    "annotations": {"summary": texts[3], "description": "\n".join(texts[20:40])},
                    "startsAt": "2026-12-05T08:00:00Z",
                }
            ],
        }
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            accepted = await http.post(
                "/webhooks/alertmanager", json=alert, headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
            )
            assert accepted.status_code == 202, accepted.text
            await bus.publish(signals)

            async with await KubeClient.from_kubeconfig(kubeconfig) as client:
                repository = StoreRepository(store)
                orchestrator = Orchestrator(
                    repository=repository,
                    diagnoser=EngineDiagnoser(
                        ClusterReaders.single(LiveBackend(client, cluster=CLUSTER), cluster_id=None),
                        repository=repository,
                    ),
                    cooldown=MemoryCooldown(),
                    limiter=MemoryRateLimiter(per_minute=6000, burst=100),
                    settings=OrchestratorSettings(),
                )
                consumer = Consumer(
                    bus=bus,
                    orchestrator=orchestrator,
                    durable="canaries",
                    batch=100,
                    pull_timeout=0.1,
                    max_deliver=5,
                )
                task = asyncio.create_task(consumer.run(stop))

                async def reported() -> list[Any] | None:
                    page = await store.list_incidents(IncidentFilters(cluster_id=CLUSTER), limit=100)
                    done = page.items and all(i.report_version >= 1 for i in page.items)
                    return list(page.items) if done and consumer.handled >= len(signals) + 1 else None

                incidents = await until(reported, timeout=60, what="the canary incidents reported")
                stop.set()
                await asyncio.wait_for(task, timeout=30)

            token = (await store.create_token(name="canary-viewer", role="viewer")).secret
            headers = {"Authorization": f"Bearer {token}"}
            bodies = [(await http.get(f"/api/v1/incidents?cluster_id={CLUSTER}", headers=headers)).text]
            for incident in incidents:
                detail = await http.get(f"/api/v1/incidents/{incident.id}", headers=headers)
                assert detail.status_code == 200
                bodies.append(detail.text)
            assert any("CanaryAlert" in body for body in bodies) and any(POD in body for body in bodies)
            assert _leaks("\n".join(bodies)) == [], "the API"

            # The dashboard, as a person signed in sees it: the list and every incident page.
            assert (await login(http, token)).status_code == 303
            pages = [(await http.get("/incidents")).text]
            for incident in incidents:
                page = await http.get(f"/incidents/{incident.id}")
                assert page.status_code == 200, page.text[:300]
                pages.append(page.text)
            assert any(POD in page for page in pages)
            assert _leaks("\n".join(pages)) == [], "the dashboard"

        async with NotificationDispatcher(store, notifications) as dispatcher:
            for _ in range(50):
                await dispatcher.run_once()
                if receiver.accepted:
                    break
                await asyncio.sleep(0.05)
        assert receiver.accepted, "a notification was sent"
        assert _leaks("\n".join(r["body"].decode() for r in receiver.requests)) == [], "a notification"
    finally:
        stop.set()
        await store.close()
        await bus.close()
