"""The sim's REST surface through real HTTP: discovery, CRUD semantics, lists, selectors."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from aetherius.kube import KubeApiError, KubeClient
from aetherius.sim import ApiError, SimCluster
from tests.sim.conftest import pod


async def test_discovery_documents(kube: KubeClient) -> None:
    version = await kube.get_json("/version")
    assert version["gitVersion"].startswith("v1.")
    core = await kube.get_json("/api/v1")
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert (core["groupVersion"], pods["kind"], pods["namespaced"]) == ("v1", "Pod", True)
    assert "watch" in pods["verbs"] and pods["shortNames"] == ["po"]
    assert any(r["name"] == "pods/log" for r in core["resources"])
    nodes = next(r for r in core["resources"] if r["name"] == "nodes")
    assert nodes["namespaced"] is False
    groups = {g["name"]: g for g in (await kube.get_json("/apis"))["groups"]}
    for group in (
        "apps",
        "batch",
        "networking.k8s.io",
        "storage.k8s.io",
        "autoscaling",
        "policy",
        "events.k8s.io",
        "admissionregistration.k8s.io",
        "discovery.k8s.io",
    ):
        assert group in groups
    assert groups["autoscaling"]["preferredVersion"]["groupVersion"] == "autoscaling/v2"
    apps = await kube.get_json("/apis/apps/v1")
    assert apps["groupVersion"] == "apps/v1"
    assert {r["name"] for r in apps["resources"]} >= {
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
    }
    with pytest.raises(KubeApiError) as missing:
        await kube.get_json("/apis/nope/v1")
    assert missing.value.status == 404


async def test_create_get_update_delete_semantics(sim: SimCluster, http: aiohttp.ClientSession) -> None:
    async with http.post("/api/v1/namespaces/shop/pods", json=pod("api-1")) as response:
        assert response.status == 201
        created = await response.json()
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1
    assert int(meta["resourceVersion"]) == sim.resource_version
    async with http.post("/api/v1/namespaces/shop/pods", json=pod("api-1")) as response:
        body = await response.json()
        assert (response.status, body["kind"], body["reason"]) == (409, "Status", "AlreadyExists")
        assert body["message"] == 'pods "api-1" already exists'

    stale = dict(created, spec={**created["spec"], "nodeName": "node-2"})
    async with http.put("/api/v1/namespaces/shop/pods/api-1", json=stale) as response:
        updated = await response.json()
        assert response.status == 200
    assert updated["metadata"]["uid"] == meta["uid"]
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    async with http.put("/api/v1/namespaces/shop/pods/api-1", json=stale) as response:
        body = await response.json()
        assert (response.status, body["reason"]) == (409, "Conflict")

    patch = {"metadata": {"labels": {"tier": "backend"}}}
    async with http.patch(
        "/api/v1/namespaces/shop/pods/api-1",
        json=patch,
        headers={"Content-Type": "application/merge-patch+json"},
    ) as response:
        assert (await response.json())["metadata"]["labels"] == {"tier": "backend"}
    async with http.delete("/api/v1/namespaces/shop/pods/api-1") as response:
        assert response.status == 200
    async with http.get("/api/v1/namespaces/shop/pods/api-1") as response:
        body = await response.json()
        assert (response.status, body["reason"], body["details"]["kind"]) == (404, "NotFound", "pods")
    async with http.delete("/api/v1/namespaces/shop/pods/api-1") as response:
        assert response.status == 404
    with pytest.raises(ApiError) as missing:
        sim.get("Pod", "shop", "api-1")
    assert missing.value.code == 404
    assert [(e.type, e.name) for e in sim.ledger if e.kind == "Pod"] == [
        ("ADDED", "api-1"),
        ("MODIFIED", "api-1"),
        ("MODIFIED", "api-1"),
        ("DELETED", "api-1"),
    ]


async def test_grouped_and_cluster_scoped_paths(sim: SimCluster, kube: KubeClient) -> None:
    sim.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": 2},
        }
    )
    sim.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}})
    deploy = await kube.get_json("/apis/apps/v1/namespaces/shop/deployments/api")
    assert (deploy["apiVersion"], deploy["kind"]) == ("apps/v1", "Deployment")
    listing = await kube.get_json("/apis/apps/v1/deployments")
    assert listing["kind"] == "DeploymentList" and listing["apiVersion"] == "apps/v1"
    assert "kind" not in listing["items"][0]  # like the real server: typed list items carry no TypeMeta
    node = await kube.get_json("/api/v1/nodes/node-1")
    assert "namespace" not in node["metadata"]
    with pytest.raises(KubeApiError) as missing:
        await kube.get_json("/apis/apps/v1/namespaces/shop/deployments/nope")
    assert missing.value.message == 'deployments.apps "nope" not found'


async def test_paged_list_is_a_consistent_snapshot(sim: SimCluster, kube: KubeClient) -> None:
    for index in range(7):
        sim.create(pod(f"p{index}"))
    first = await kube.get_json("/api/v1/namespaces/shop/pods", params={"limit": 3})
    assert [p["metadata"]["name"] for p in first["items"]] == ["p0", "p1", "p2"]
    assert first["metadata"]["remainingItemCount"] == 4
    list_rv = first["metadata"]["resourceVersion"]
    sim.delete("Pod", "shop", "p4")
    sim.create(pod("p9"))
    second = await kube.get_json(
        "/api/v1/namespaces/shop/pods", params={"limit": 3, "continue": first["metadata"]["continue"]}
    )
    assert [p["metadata"]["name"] for p in second["items"]] == ["p3", "p4", "p5"]
    assert second["metadata"]["resourceVersion"] == list_rv
    third = await kube.get_json(
        "/api/v1/namespaces/shop/pods", params={"limit": 3, "continue": second["metadata"]["continue"]}
    )
    assert [p["metadata"]["name"] for p in third["items"]] == ["p6"]
    assert "continue" not in third["metadata"] and "remainingItemCount" not in third["metadata"]


async def test_a_paged_list_in_progress_is_signalled(sim: SimCluster, kube: KubeClient) -> None:
    """``faults.paged_list_started`` wakes when a page carries a continue token, not before."""
    for index in range(4):
        sim.create(pod(f"p{index}"))
    waiting = asyncio.create_task(sim.faults.paged_list_started())
    await kube.get_json("/api/v1/pods", params={"limit": 10})  # one page: nothing in progress
    await kube.get_json("/api/v1/pods")
    assert not waiting.done() and sim.faults.continue_tokens_issued == 0
    page = await kube.get_json("/api/v1/pods", params={"limit": 3})
    async with asyncio.timeout(10):
        await waiting
    assert sim.faults.continue_tokens_issued == 1 and page["metadata"]["continue"]


async def test_expired_and_invalid_continue_tokens(sim: SimCluster, kube: KubeClient) -> None:
    for index in range(4):
        sim.create(pod(f"p{index}"))
    page = await kube.get_json("/api/v1/pods", params={"limit": 2})
    sim.faults.expire_continue_tokens()
    with pytest.raises(KubeApiError) as expired:
        await kube.get_json("/api/v1/pods", params={"limit": 2, "continue": page["metadata"]["continue"]})
    assert expired.value.gone and expired.value.reason == "Expired"
    page = await kube.get_json("/api/v1/pods", params={"limit": 2})
    for index in range(60):  # more changes than the history holds: the snapshot is compacted
        sim.patch("Pod", "shop", "p0", {"metadata": {"labels": {"n": str(index)}}})
    with pytest.raises(KubeApiError) as compacted:
        await kube.get_json("/api/v1/pods", params={"limit": 2, "continue": page["metadata"]["continue"]})
    assert compacted.value.status == 410
    with pytest.raises(KubeApiError) as invalid:
        await kube.get_json("/api/v1/pods", params={"continue": "not-a-token"})
    assert invalid.value.status == 400


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=api", ["a1", "a2"]),
        ("app==api", ["a1", "a2"]),
        ("app!=api", ["b1", "n1"]),
        ("app in (api,web)", ["a1", "a2", "b1"]),
        ("app notin (api)", ["b1", "n1"]),
        ("tier", ["a1", "b1"]),
        ("!tier", ["a2", "n1"]),
        ("app=api,tier=backend", ["a1"]),
        ("app in (api, web),!tier", ["a2"]),
    ],
)
async def test_label_selectors(sim: SimCluster, kube: KubeClient, selector: str, expected: list[str]) -> None:
    sim.create(pod("a1", labels={"app": "api", "tier": "backend"}))
    sim.create(pod("a2", labels={"app": "api"}))
    sim.create(pod("b1", labels={"app": "web", "tier": "front"}))
    sim.create(pod("n1"))
    items, _ = await kube.list_all("/api/v1/pods", params={"labelSelector": selector})
    assert sorted(p["metadata"]["name"] for p in items) == expected


async def test_field_selectors(sim: SimCluster, kube: KubeClient) -> None:
    sim.create(pod("run", phase="Running", node="node-1"))
    sim.create(pod("pend", phase="Pending", node="node-2"))
    sim.create(pod("other", ns="web", phase="Running", node="node-2"))

    async def names(path: str, selector: str) -> list[str]:
        items, _ = await kube.list_all(path, params={"fieldSelector": selector})
        return sorted(p["metadata"]["name"] for p in items)

    assert await names("/api/v1/pods", "status.phase=Running") == ["other", "run"]
    assert await names("/api/v1/pods", "status.phase!=Running") == ["pend"]
    assert await names("/api/v1/pods", "spec.nodeName=node-2,metadata.namespace=web") == ["other"]
    assert await names("/api/v1/namespaces/shop/pods", "metadata.name=pend") == ["pend"]
    uid = sim.get("Pod", "shop", "run")["metadata"]["uid"]
    for reason, kind in (("BackOff", "Warning"), ("Pulled", "Normal")):
        sim.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"run.{reason}", "namespace": "shop"},
                "involvedObject": {"kind": "Pod", "name": "run", "namespace": "shop", "uid": uid},
                "reason": reason,
                "type": kind,
                "message": "m",
            }
        )
    assert await names("/api/v1/events", "involvedObject.kind=Pod,involvedObject.name=run,type=Warning") == [
        "run.BackOff"
    ]
    assert await names("/api/v1/events", f"involvedObject.uid={uid},reason=Pulled") == ["run.Pulled"]
    assert await names("/apis/events.k8s.io/v1/events", "regarding.name=run,reason=BackOff") == [
        "run.BackOff"
    ]
    with pytest.raises(KubeApiError) as unsupported:
        await kube.get_json("/api/v1/pods", params={"fieldSelector": "spec.containers=x"})
    assert (unsupported.value.status, unsupported.value.message) == (
        400,
        "field label not supported: spec.containers",
    )
    with pytest.raises(KubeApiError) as generic:
        await kube.get_json("/api/v1/configmaps", params={"fieldSelector": "data=x"})
    assert generic.value.status == 400 and "not a known field selector" in generic.value.message
    with pytest.raises(KubeApiError) as bad_label:
        await kube.get_json("/api/v1/pods", params={"labelSelector": "app in (a"})
    assert bad_label.value.status == 400


async def test_events_v1_is_a_view_of_core_events(sim: SimCluster, kube: KubeClient) -> None:
    sim.create(
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "e1", "namespace": "shop"},
            "reason": "BackOff",
            "note": "Back-off",
            "type": "Warning",
            "regarding": {"kind": "Pod", "name": "api", "namespace": "shop"},
            "reportingController": "kubelet",
            "reportingInstance": "node-1",
        }
    )
    core = await kube.get_json("/api/v1/namespaces/shop/events/e1")
    assert (core["message"], core["involvedObject"]["name"], core["apiVersion"]) == ("Back-off", "api", "v1")
    v1 = await kube.get_json("/apis/events.k8s.io/v1/namespaces/shop/events/e1")
    assert (v1["note"], v1["regarding"]["name"], v1["apiVersion"]) == ("Back-off", "api", "events.k8s.io/v1")
