"""``POST /api/v1/diagnose`` runs the engine live against the simulated cluster, audited."""

from __future__ import annotations

from pathlib import Path

import httpx

from aetherius.api.diagnosis import live_diagnose
from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.kube import KubeClient
from aetherius.sim import SimCluster
from aetherius.store import Store
from tests.api.conftest import Tokens, make_settings
from tests.scenarios.library import ROOT


async def _diagnose_over_http(
    sim: SimCluster, *, store: Store, bus: MemoryBus, tokens: Tokens, tmp_path: Path, namespaces: list[str]
) -> list[httpx.Response]:
    """``POST /api/v1/diagnose`` for each namespace, the app reading ``sim`` live."""
    kubeconfig = Path(sim.write_kubeconfig(tmp_path / "kubeconfig"))
    async with await KubeClient.from_kubeconfig(kubeconfig) as kube:
        app = create_app(
            settings=make_settings(),
            store=store,
            bus=bus,
            diagnose=live_diagnose(kube, store=store, cluster="sim"),
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60
        ) as http:
            return [
                await http.post("/api/v1/diagnose", json={"namespace": ns}, headers=tokens.header("operator"))
                for ns in namespaces
            ]


async def test_diagnose_namespace_live(store: Store, bus: MemoryBus, tokens: Tokens, tmp_path: Path) -> None:
    async with SimCluster(scenario=ROOT / "crashloop-causes" / "snapshot.yaml") as sim:
        response, bad = await _diagnose_over_http(
            sim, store=store, bus=bus, tokens=tokens, tmp_path=tmp_path, namespaces=["shop", "Not Valid"]
        )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["findings"] and all(f["namespace"] == "shop" for f in document["findings"])
    assert any(
        f["name"] == "billing" and f["root_cause"] == "MissingConfiguration" for f in document["findings"]
    )
    audit = await store.list_audit(scan_id=document["scan_id"])
    assert audit and {a.operation for a in audit} <= {"list", "logs", "get", "events", "node"}
    assert bad.status_code == 422


async def test_a_diagnosis_that_fails_keeps_the_audit_of_its_reads(
    store: Store, bus: MemoryBus, tokens: Tokens, tmp_path: Path
) -> None:
    """The cluster answers 500 for Pods: the scan stops (503, never "no problems"), and every read
    it made, the failed one included, is in the audit under the scan's id."""
    import re

    async with SimCluster(scenario=ROOT / "crashloop-causes" / "snapshot.yaml") as sim:
        sim.faults.error(20, status=500, path_prefix="/api/v1/namespaces/shop/pods")
        (response,) = await _diagnose_over_http(
            sim, store=store, bus=bus, tokens=tokens, tmp_path=tmp_path, namespaces=["shop"]
        )
    assert response.status_code == 503, response.text
    assert "could not be read" in response.json()["detail"]
    match = re.search(r"scan (scan-[0-9a-f]+)", response.json()["detail"])
    assert match, response.text
    audit = await store.list_audit(scan_id=match.group(1))
    failed = [a for a in audit if a.resource == "Pod" and a.outcome.startswith("error")]
    assert failed, [(a.resource, a.outcome) for a in audit]
    assert any(a.outcome == "ok" for a in audit), "the reads that worked are kept too"
