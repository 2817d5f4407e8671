"""Out-of-cluster mode: one ``aetherius run`` (``serve_all``, in process) over two clusters.

Two simulated clusters over real HTTP, two kubeconfigs, one process: both clusters are listed,
each failure becomes an incident of its own cluster, diagnosed from that cluster's reads (its
audit rows name it, and only its API server was asked for the failing pod), each watcher keeps
its own cursor, and the API's on-demand diagnosis reads the cluster it is asked about. The
kubeconfig whose user may write is warned about, the read-only one is not.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from aetherius.bus import open_bus
from aetherius.compose.run import serve_all
from aetherius.config import Settings, load_settings
from aetherius.sim import SimCluster
from aetherius.store import Store
from aetherius.watch.cursor import kv_token
from tests.compose.clusters import checkout_only, demo_variant, fresh_uid, without_checkout

DASHBOARD = re.compile(r"^Aetherius dashboard: (http://\S+)$")
WRITER_RULES = [
    {"verbs": ["get", "list", "watch", "create", "delete"], "apiGroups": [""], "resources": ["pods"]}
]


@dataclass
class Running:
    url: str
    token: str
    settings: Settings
    lines: list[str]
    alpha: SimCluster
    beta: SimCluster
    alpha_id: str


@pytest.fixture
async def running(tmp_path: Path, store: Store, store_url: str) -> AsyncIterator[Running]:
    alpha_uid = fresh_uid()
    async with (
        SimCluster(demo_variant(without_checkout, uid=alpha_uid), speed=50) as alpha,
        SimCluster(demo_variant(checkout_only, uid=fresh_uid()), speed=50) as beta,
    ):
        alpha.grant("writer", WRITER_RULES)
        settings = load_settings(
            env={},
            overrides={
                ("clusters",): [
                    {"kubeconfig": str(alpha.write_kubeconfig(tmp_path / "alpha.yaml", token="writer"))},
                    {
                        "name": f"beta-{secrets.token_hex(3)}",
                        "kubeconfig": str(beta.write_kubeconfig(tmp_path / "beta.yaml")),
                    },
                ],
                ("message_bus", "url"): f"memory://ooc-{secrets.token_hex(4)}",
                ("database", "url"): store_url,
                ("redis", "url"): "",
                ("api", "host"): "127.0.0.1",
                ("api", "port"): 0,
                ("kube", "qps"): 200.0,
                ("kube", "burst"): 400,
            },
        )
        token = (await store.create_token(name=f"ooc-{secrets.token_hex(3)}", role="operator")).secret
        lines: list[str] = []
        stop = asyncio.Event()
        task = asyncio.create_task(serve_all(settings, stop=stop, announce=lines.append))
        try:
            url = ""
            for _ in range(600):
                url = next((m.group(1) for m in map(DASHBOARD.match, lines) if m), "")
                if url or task.done():
                    break
                await asyncio.sleep(0.1)
            if task.done():
                task.result()
            assert url, lines
            yield Running(url, token, settings, lines, alpha, beta, alpha_id=f"cluster-{alpha_uid[:8]}")
        finally:
            stop.set()
            await task


async def _get(client: httpx.AsyncClient, path: str) -> Any:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def _incident(
    client: httpx.AsyncClient, *, cluster: str, owner: str, cause: str, tries: int = 400
) -> dict[str, Any]:
    """The incident of ``owner`` in ``cluster`` once its report names ``cause`` (bounded wait)."""
    found: list[dict[str, Any]] = []
    for _ in range(tries):
        found = (await _get(client, f"/api/v1/incidents?cluster={cluster}&limit=200"))["items"]
        for incident in found:
            if (incident["owner_name"] or incident["object_name"]) == owner and incident[
                "root_cause"
            ] == cause:
                return incident
        await asyncio.sleep(0.25)
    raise AssertionError(f"no {cause} incident of {owner} in {cluster}: {found}")


async def test_two_clusters_in_one_run(running: Running) -> None:
    beta_id = running.settings.clusters[1].name
    assert beta_id is not None
    asked_alpha = running.alpha.record_responses("/api/v1/namespaces/shop/")
    asked_beta = running.beta.record_responses("/api/v1/namespaces/shop/")
    headers = {"Authorization": f"Bearer {running.token}"}
    async with httpx.AsyncClient(base_url=running.url, headers=headers, timeout=30) as client:
        blog = await _incident(client, cluster=running.alpha_id, owner="blog", cause="ProbeFailure")
        checkout = await _incident(client, cluster=beta_id, owner="checkout", cause="OutOfMemory")

        # Each failure is its own cluster's only: nothing of it under the other.
        alpha_items = (await _get(client, f"/api/v1/incidents?cluster={running.alpha_id}&limit=200"))["items"]
        beta_items = (await _get(client, f"/api/v1/incidents?cluster={beta_id}&limit=200"))["items"]
        assert not [
            i for i in alpha_items if i["owner_name"] == "checkout" and i["root_cause"] == "OutOfMemory"
        ]
        assert not [i for i in beta_items if i["owner_name"] == "blog"]

        # Diagnosed from its own cluster: the audit trail names it, and only its server was asked.
        for incident, cluster in ((blog, running.alpha_id), (checkout, beta_id)):
            detail = await _get(client, f"/api/v1/incidents/{incident['id']}")
            assert detail["audit"], "every read is audited"
            assert {row["cluster_id"] for row in detail["audit"]} == {cluster}
            assert detail["reports"][0]["document"]["evidence"]
        # NB: only beta's checkout was OOM-killed: the diagnosis that said so read beta's API server.
        assert any(b"OOMKilled" in sent.body for sent in asked_beta), "beta was read for its diagnosis"
        assert not any(b"OOMKilled" in sent.body for sent in asked_alpha)

        # Both clusters listed, connected, with how each id was found and their watchers' health.
        listed = {c["id"]: c for c in await _get(client, "/api/v1/clusters")}
        assert listed[running.alpha_id]["detected_by"] == "namespace_uid"
        assert listed[beta_id]["detected_by"] == "env"  # an explicit name: configured
        for cluster_id in (running.alpha_id, beta_id):
            cluster = listed[cluster_id]
            assert cluster["status"] == "connected", cluster
            assert cluster["watcher_status"] == "ok" and isinstance(cluster["signals_behind"], int), cluster

        # The on-demand diagnosis reads the cluster it is asked about, and refuses an unknown one.
        scanned = await client.post("/api/v1/diagnose", json={"namespace": "shop", "cluster": beta_id})
        assert scanned.status_code == 200, scanned.text
        assert b"OutOfMemory" in orjson.dumps(scanned.json())
        other = await client.post(
            "/api/v1/diagnose", json={"namespace": "shop", "cluster_id": running.alpha_id}
        )
        assert other.status_code == 200 and b"OutOfMemory" not in orjson.dumps(other.json())
        unknown = await client.post("/api/v1/diagnose", json={"namespace": "shop", "cluster": "nowhere"})
        assert unknown.status_code == 404 and "nowhere" in unknown.json()["detail"], unknown.text
        unnamed = await client.post("/api/v1/diagnose", json={"namespace": "shop"})
        assert unnamed.status_code == 404 and beta_id in unnamed.json()["detail"], unnamed.text

    # Each watcher keeps its own cursor, under its own cluster's prefix (saved every checkpoint).
    bus = await open_bus(running.settings.message_bus)
    kv = await bus.key_value(running.settings.message_bus.kv_bucket)
    saved: dict[str, dict[str, bytes]] = {}
    for _ in range(200):
        saved = {c: await kv.items(f"{kv_token(c)}.cursor") for c in (running.alpha_id, beta_id)}
        if all(saved.values()):
            break
        await asyncio.sleep(0.1)
    assert all(saved.values()), saved
    for cluster_id, sim in ((running.alpha_id, running.alpha), (beta_id, running.beta)):
        assert {int(rv) for rv in saved[cluster_id].values()} <= set(range(1, sim.resource_version + 1))

    # The writer's kubeconfig was warned about, once; the read-only one not at all.
    warnings = [line for line in running.lines if line.startswith("Warning:")]
    assert len(warnings) == 1, running.lines
    assert running.alpha_id in warnings[0] and "create, delete on pods in default" in warnings[0]
    assert beta_id not in warnings[0]


async def test_two_entries_naming_the_same_cluster_are_refused(tmp_path: Path, store_url: str) -> None:
    from aetherius.orchestrator.process import StartError

    async with SimCluster("demo") as one, SimCluster("demo") as two:
        settings = load_settings(
            env={},
            overrides={
                ("clusters",): [
                    {"kubeconfig": str(one.write_kubeconfig(tmp_path / "one.yaml"))},
                    {"kubeconfig": str(two.write_kubeconfig(tmp_path / "two.yaml"))},
                ],
                ("message_bus", "url"): "memory://ooc-clash",
                ("database", "url"): store_url,
                ("api", "port"): 0,
            },
        )
        with pytest.raises(StartError) as refused:
            await serve_all(settings, stop=asyncio.Event(), announce=lambda _: None)
    message = str(refused.value)
    assert "clusters.0" in message and "clusters.1" in message
    assert "both cluster 'cluster-91a9994f'" in message and "give each entry its own name" in message
