"""A list larger than one message comes back in pages; an object larger than a message comes back
as its identity, counted — over a real nats-server, with the agent's message limit made small."""

from __future__ import annotations

from pathlib import Path

import nats
from prometheus_client import REGISTRY

from aetherius.fleet.identity import parse_token
from aetherius.fleet.remote import RemoteBackend
from aetherius.fleet.responder import GatewayResponder
from aetherius.fleet.subjects import ClusterSubjects
from aetherius.gateway import LiveBackend
from aetherius.kube import KubeClient
from aetherius.sim import SimCluster
from tests.hub import Hub
from tests.watch.harness import event_obj


async def test_pages_and_oversized_objects(hub: Hub, tmp_path: Path) -> None:
    await hub.provision()
    token = hub.add("paged")
    await hub.reload()
    cluster, seed = parse_token(token)
    subjects = ClusterSubjects.of(cluster, hub.bus)
    async with SimCluster() as sim:
        for i in range(60):
            sim.create(event_obj(f"many-{i:02d}", namespace="shop"))
        big = event_obj("huge", namespace="shop")
        big["metadata"]["labels"] = {"blob": "x" * 60}
        big["message"] = "y" * 20_000
        sim.create(big)
        kube = await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig"))
        agent = await nats.connect(hub.url, nkeys_seed_str=seed, inbox_prefix=subjects.inbox_prefix)
        central = hub.central_bus()
        responder = GatewayResponder(
            agent, LiveBackend(kube, cluster=cluster), subjects=subjects, max_payload=8192
        )
        await responder.start()
        before = REGISTRY.get_sample_value("aetherius_edge_gateway_objects_truncated_total") or 0.0
        page_labels = {"cluster": cluster, "op": "page", "outcome": "ok"}
        pages_before = (
            REGISTRY.get_sample_value("aetherius_remote_gateway_requests_total", page_labels) or 0.0
        )
        try:
            remote = RemoteBackend(central, subjects=subjects, timeout=5)
            items, _ = await remote.list("Event", namespace="shop", label_selector=None, field_selector=None)
            huge, _ = await remote.get("Event", namespace="shop", name="huge")
        finally:
            await responder.stop()
            await agent.close()
            await central.close()
            await kube.close()
    names = sorted(str(i["metadata"]["name"]) for i in items)
    assert names == sorted([f"many-{i:02d}" for i in range(60)] + ["huge"]), "every item, over several pages"
    assert huge is not None and "message" not in huge
    assert huge["metadata"]["annotations"]["aetherius.io/truncated"].startswith("metadata only")
    pages = (
        REGISTRY.get_sample_value("aetherius_remote_gateway_requests_total", page_labels) or 0.0
    ) - pages_before
    assert pages >= 3, f"the list came in {pages + 1} messages"
    after = REGISTRY.get_sample_value("aetherius_edge_gateway_objects_truncated_total") or 0.0
    assert after == before + 2, "the oversized object, once in the list and once alone"
