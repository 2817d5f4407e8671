"""pods/log parameters through the real client: container, previous, tailLines, limitBytes, follow."""

from __future__ import annotations

import pytest

from aetherius.kube import KubeApiError, KubeClient
from aetherius.sim import SimCluster
from tests.sim.conftest import pod

LOG = "/api/v1/namespaces/shop/pods/api/log"


@pytest.fixture
async def with_logs(sim: SimCluster) -> SimCluster:
    sim.create(pod("api", containers=("app", "sidecar")))
    sim.add_logs("shop", "api", "app", "2026-11-30T10:00:01Z FATAL connection refused\n", previous=True)
    sim.add_logs("shop", "api", "app", "one\ntwo\nthree\n")
    sim.add_logs("shop", "api", "sidecar", "proxy up\n")
    return sim


async def test_container_previous_tail_limit_timestamps(with_logs: SimCluster, kube: KubeClient) -> None:
    assert await kube.get_bytes(LOG, params={"container": "app"}) == b"one\ntwo\nthree\n"
    assert await kube.get_bytes(LOG, params={"container": "app", "tailLines": 2}) == b"two\nthree\n"
    assert await kube.get_bytes(LOG, params={"container": "app", "limitBytes": 5}) == b"one\nt"
    previous = await kube.get_bytes(LOG, params={"container": "app", "previous": True, "timestamps": True})
    assert previous == b"2026-11-30T10:00:01.000000000Z 2026-11-30T10:00:01Z FATAL connection refused\n"
    assert await kube.get_bytes(LOG, params={"container": "sidecar"}) == b"proxy up\n"
    with pytest.raises(KubeApiError) as choose:
        await kube.get_bytes(LOG)
    assert choose.value.status == 400 and "choose one of: [app sidecar]" in choose.value.message
    with pytest.raises(KubeApiError) as no_previous:
        await kube.get_bytes(LOG, params={"container": "sidecar", "previous": True})
    assert no_previous.value.message == 'previous terminated container "sidecar" in pod "api" not found'
    with pytest.raises(KubeApiError) as wrong:
        await kube.get_bytes(LOG, params={"container": "db"})
    assert wrong.value.message == "container db is not valid for pod api"
    with pytest.raises(KubeApiError) as missing:
        await kube.get_bytes("/api/v1/namespaces/shop/pods/nope/log")
    assert missing.value.status == 404


async def test_follow_streams_appended_lines(with_logs: SimCluster, kube: KubeClient) -> None:
    received: list[bytes] = []
    params: dict[str, str | int | bool | None] = {"container": "app", "follow": True, "tailLines": 1}
    async with kube.stream_lines(LOG, params=params, inactivity_timeout=5) as lines:
        async for line in lines:
            received.append(line)
            if len(received) == 1:  # the tail has arrived: the stream is open, the next line is new
                with_logs.add_logs("shop", "api", "app", "four\n")
            if len(received) == 2:
                break
    assert received == [b"three", b"four"]


async def test_dead_instance_logs_are_served_as_soon_as_it_dies(sim: SimCluster, kube: KubeClient) -> None:
    """As the kubelet does: after the first crash, in back-off, ``--previous`` and a plain request
    both return the dead instance's lines; once restarted, plain is the new instance's."""
    sim.create(pod("db-client", containers=("app",)))
    sim.timeline.extend(
        [
            {"at": 0, "pod": "shop/db-client", "schedule": {"node": "node-1"}},
            {
                "at": "1s",
                "pod": "shop/db-client",
                "crashloop": {"run_for": "2s", "restarts": 1, "logs": "FATAL dial tcp: connection refused"},
            },
        ]
    )
    sim.timeline.advance(3.5)  # started at 1s, died at 3s: waiting in CrashLoopBackOff, restartCount 0
    status = sim.get("Pod", "shop", "db-client")["status"]["containerStatuses"][0]
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff" and status["restartCount"] == 0
    path = "/api/v1/namespaces/shop/pods/db-client/log"
    assert await kube.get_bytes(path, params={"previous": True}) == b"FATAL dial tcp: connection refused\n"
    assert await kube.get_bytes(path) == b"FATAL dial tcp: connection refused\n"
    sim.timeline.advance(20)  # restarted: the new instance writes the same line again, then dies again
    assert await kube.get_bytes(path, params={"previous": True}) == b"FATAL dial tcp: connection refused\n"
