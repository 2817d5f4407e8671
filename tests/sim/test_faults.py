"""Every injectable fault, seen through the real client over real HTTP, and the admin endpoint."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from aetherius.kube import KubeApiError, KubeClient, KubeConnectionError
from aetherius.sim import SimCluster
from tests.sim.conftest import pod
from tests.waiting import until


async def test_throttle_answers_429_with_retry_after(sim: SimCluster, kube: KubeClient) -> None:
    sim.faults.throttle(2, retry_after=3)
    for _ in range(2):
        with pytest.raises(KubeApiError) as throttled:
            await kube.get_json("/api/v1/pods")
        assert (throttled.value.status, throttled.value.retry_after) == (429, 3.0)
        assert throttled.value.reason == "TooManyRequests"
    assert (await kube.get_json("/api/v1/pods"))["kind"] == "PodList"


async def test_errors_only_on_matching_paths(sim: SimCluster, kube: KubeClient) -> None:
    sim.faults.error(1, status=500, path_prefix="/api/v1/events")
    assert (await kube.get_json("/api/v1/pods"))["kind"] == "PodList"
    with pytest.raises(KubeApiError) as failed:
        await kube.get_json("/api/v1/events")
    assert (failed.value.status, failed.value.reason) == (500, "InternalError")
    assert (await kube.get_json("/api/v1/events"))["kind"] == "EventList"
    sim.faults.error(1, status=503)
    with pytest.raises(KubeApiError) as unavailable:
        await kube.get_json("/version")
    assert unavailable.value.status == 503
    assert sim.faults.injected["http_500"] == 1 and sim.faults.injected["http_503"] == 1


async def _open_watch(
    kube: KubeClient, sim: SimCluster, received: list[dict[str, object]], **kwargs: float
) -> None:
    params: dict[str, str | bool] = {"watch": True, "resourceVersion": str(sim.resource_version)}
    async with kube.stream_lines("/api/v1/pods", params=params, **kwargs) as lines:
        async for line in lines:
            received.append(orjson.loads(line))


async def _wait_open(sim: SimCluster, count: int = 1) -> None:
    for _ in range(100):
        if len(sim.faults.open_watches) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the watch did not open")


async def test_close_watches_ends_streams_cleanly_or_abruptly(sim: SimCluster, kube: KubeClient) -> None:
    received: list[dict[str, object]] = []
    task = asyncio.create_task(_open_watch(kube, sim, received))
    await _wait_open(sim)
    sim.create(pod("a"))
    await until(lambda: received, "the ADDED event received")
    assert sim.faults.close_watches() == 1
    await asyncio.wait_for(task, 5)  # a clean end of stream
    assert [e["type"] for e in received] == ["ADDED"]
    task = asyncio.create_task(_open_watch(kube, sim, received))
    await _wait_open(sim)
    sim.faults.close_watches(abort=True)
    with pytest.raises(KubeConnectionError):
        await asyncio.wait_for(task, 5)


async def test_gone_in_stream_sends_error_event(sim: SimCluster, kube: KubeClient) -> None:
    received: list[dict[str, object]] = []
    task = asyncio.create_task(_open_watch(kube, sim, received))
    await _wait_open(sim)
    assert sim.faults.gone_in_stream() == 1
    await asyncio.wait_for(task, 5)
    assert received[-1]["type"] == "ERROR"
    assert received[-1]["object"]["code"] == 410  # type: ignore[index]


async def test_stall_keeps_connection_open_and_silent(sim: SimCluster, kube: KubeClient) -> None:
    received: list[dict[str, object]] = []
    task = asyncio.create_task(_open_watch(kube, sim, received, inactivity_timeout=0.5))
    await _wait_open(sim)
    sim.faults.stall(3)
    sim.create(pod("a"))
    with pytest.raises(KubeConnectionError):  # the client's inactivity timeout fires; nothing was sent
        await asyncio.wait_for(task, 5)
    assert received == []
    # Events committed during a stall are not lost: a watch resuming from the RV gets them.
    resumed = []
    params: dict[str, str | bool | int] = {
        "watch": True,
        "resourceVersion": str(sim.resource_version - 1),
        "timeoutSeconds": 1,
    }
    async with kube.stream_lines("/api/v1/pods", params=params) as lines:
        resumed = [orjson.loads(line) async for line in lines]
    assert [e["object"]["metadata"]["name"] for e in resumed] == ["a"]


async def test_stalled_watch_resumes_after_the_stall(sim: SimCluster, kube: KubeClient) -> None:
    received: list[dict[str, object]] = []
    task = asyncio.create_task(_open_watch(kube, sim, received))
    await _wait_open(sim)
    sim.faults.stall(0.4)
    began = time.monotonic()
    sim.create(pod("a"))
    for _ in range(100):
        if received or time.monotonic() - began > 5:
            break
        await asyncio.sleep(0.05)
    assert [e["type"] for e in received] == ["ADDED"]
    sim.faults.close_watches()
    await asyncio.wait_for(task, 5)


async def test_admin_endpoint_drives_faults_and_ledger(sim: SimCluster, kube: KubeClient) -> None:
    async with aiohttp.ClientSession(base_url=sim.url) as http:
        async with http.post("/_sim/faults/throttle", json={"n": 1, "retry_after": 2}) as response:
            assert response.status == 200
        with pytest.raises(KubeApiError) as throttled:
            await kube.get_json("/api/v1/pods")
        assert throttled.value.status == 429
        async with http.post(
            "/_sim/faults/error", json={"n": 1, "status": 500, "path_prefix": "/api/v1/nodes"}
        ):
            pass
        with pytest.raises(KubeApiError):
            await kube.get_json("/api/v1/nodes")
        async with http.post("/_sim/faults/throttle", json={"bogus": 1}) as response:
            assert response.status == 400
        async with http.post("/_sim/faults/gone_on_connect", json={"n": 1}):
            pass
        assert sim.faults._gone_on_connect == 1
        sim.create(pod("a"))
        async with http.get("/_sim/ledger", params={"after": str(sim.resource_version - 1)}) as response:
            entries = (await response.json())["entries"]
        assert [(e["type"], e["kind"], e["name"]) for e in entries] == [("ADDED", "Pod", "a")]
        async with http.get("/_sim/state") as response:
            state = await response.json()
        assert state["resourceVersion"] == sim.resource_version and state["injected"]["http_429"] == 1
