"""Watch semantics over real HTTP: replay, initial state, bookmarks, 410 in both forms, timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from aetherius.kube import KubeApiError, KubeClient
from aetherius.sim import SimCluster
from tests.sim.conftest import pod
from tests.waiting import until


async def collect(
    kube: KubeClient, path: str, *, until: int | None = None, **params: str | bool | int
) -> list[dict[str, Any]]:
    """Watch events until the stream ends (or ``until`` non-bookmark events arrived)."""
    events: list[dict[str, Any]] = []
    async with kube.stream_lines(path, params={"watch": True, **params}, inactivity_timeout=10) as lines:
        async for line in lines:
            events.append(orjson.loads(line))
            if until is not None and sum(e["type"] != "BOOKMARK" for e in events) >= until:
                break
    return events


async def test_replay_from_rv_then_live(sim: SimCluster, kube: KubeClient) -> None:
    sim.create(pod("a"))
    start = sim.resource_version
    sim.create(pod("b"))
    sim.patch("Pod", "shop", "b", {"status": {"phase": "Failed"}})

    async def later() -> None:  # once the watch has replayed the two past changes: the delete is live
        await until(lambda: any(c.events_sent >= 2 for c in sim.faults.open_watches), "the replay sent")
        sim.delete("Pod", "shop", "b")

    task = asyncio.create_task(later())
    events = await collect(kube, "/api/v1/namespaces/shop/pods", until=3, resourceVersion=str(start))
    await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "b"),
        ("DELETED", "b"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] == start + 1 and rvs[-1] == sim.resource_version
    assert [(le.rv, le.type) for le in sim.ledger[-3:]] == [
        (rv, e["type"]) for rv, e in zip(rvs, events, strict=True)
    ]


@pytest.mark.parametrize("rv", ["", "0"])
async def test_watch_without_rv_starts_with_synthetic_added(
    sim: SimCluster, kube: KubeClient, rv: str
) -> None:
    sim.create(pod("a"))
    sim.create(pod("b", ns="web"))
    events = await collect(kube, "/api/v1/pods", resourceVersion=rv, timeoutSeconds=1)
    assert sorted((e["type"], e["object"]["metadata"]["name"]) for e in events) == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]


async def test_watch_filters_by_namespace_and_selector_transitions(sim: SimCluster, kube: KubeClient) -> None:
    start = sim.resource_version
    sim.create(pod("a", labels={"app": "api"}))
    sim.create(pod("w", ns="web", labels={"app": "api"}))
    sim.patch("Pod", "shop", "a", {"metadata": {"labels": {"app": "other"}}})  # leaves the selection
    sim.patch("Pod", "shop", "a", {"metadata": {"labels": {"app": "api"}}})  # enters it again
    events = await collect(
        kube,
        "/api/v1/namespaces/shop/pods",
        resourceVersion=str(start),
        labelSelector="app=api",
        timeoutSeconds=1,
    )
    assert [e["type"] for e in events] == ["ADDED", "DELETED", "ADDED"]
    assert {e["object"]["metadata"]["namespace"] for e in events} == {"shop"}


async def test_bookmarks_periodic_and_on_timeout(sim: SimCluster, kube: KubeClient) -> None:
    events = await collect(
        kube,
        "/api/v1/pods",
        resourceVersion=str(sim.resource_version),
        allowWatchBookmarks=True,
        timeoutSeconds=1,
    )
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert len(bookmarks) >= 3  # interval 0.2 s over 1 s, plus one at the timeout
    assert bookmarks[-1]["object"]["metadata"]["resourceVersion"] == str(sim.resource_version)
    assert bookmarks[0]["object"]["kind"] == "Pod"
    plain = await collect(kube, "/api/v1/pods", resourceVersion=str(sim.resource_version), timeoutSeconds=1)
    assert plain == []  # no bookmarks unless asked; the stream ended at timeoutSeconds


async def test_history_passing_yields_in_stream_410(sim: SimCluster, kube: KubeClient) -> None:
    sim.create(pod("a"))
    old = sim.resource_version
    for index in range(60):  # history_size is 50
        sim.patch("Pod", "shop", "a", {"metadata": {"labels": {"n": str(index)}}})
    events = await collect(kube, "/api/v1/pods", resourceVersion=str(old))
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    # Still inside the window: no error.
    recent = sim.resource_version - 10
    replay = await collect(kube, "/api/v1/pods", resourceVersion=str(recent), until=10)
    assert [int(e["object"]["metadata"]["resourceVersion"]) for e in replay] == list(
        range(recent + 1, recent + 11)
    )


async def test_open_watch_overtaken_by_history_gets_410(sim: SimCluster, kube: KubeClient) -> None:
    sim.create(pod("a"))
    start = sim.resource_version
    async with kube.stream_lines(
        "/api/v1/pods", params={"watch": True, "resourceVersion": str(start)}
    ) as lines:
        await until(lambda: sim.faults.open_watches, "the watch open")  # the stall acts on open ones
        assert sim.faults.stall(0.5) == 1  # the watcher falls behind while the cluster moves on
        for index in range(80):
            sim.patch("Pod", "shop", "a", {"metadata": {"labels": {"n": str(index)}}})
        events = [orjson.loads(line) async for line in lines]
    assert events[-1]["type"] == "ERROR" and events[-1]["object"]["code"] == 410


async def test_gone_on_connect_http_and_in_stream(sim: SimCluster, kube: KubeClient) -> None:
    sim.faults.gone_on_connect(1)
    with pytest.raises(KubeApiError) as gone:
        await collect(kube, "/api/v1/pods", resourceVersion=str(sim.resource_version))
    assert gone.value.gone
    sim.faults.gone_on_connect(1, in_stream=True)
    events = await collect(kube, "/api/v1/pods", resourceVersion=str(sim.resource_version))
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]
    assert (
        await collect(kube, "/api/v1/pods", resourceVersion=str(sim.resource_version), timeoutSeconds=1) == []
    )
    assert sim.faults.injected["gone_on_connect"] == 2


async def test_invalid_watch_parameters_are_400(sim: SimCluster, kube: KubeClient) -> None:
    with pytest.raises(KubeApiError) as bad_rv:
        await collect(kube, "/api/v1/pods", resourceVersion="abc")
    with pytest.raises(KubeApiError) as bad_timeout:
        await collect(kube, "/api/v1/pods", timeoutSeconds="soon")
    assert bad_rv.value.status == bad_timeout.value.status == 400
