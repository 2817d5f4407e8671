"""No name can steer a read: what reaches the API server is exactly the paths of the kind table.

A recording proxy sits between the gateway and the simulated cluster and keeps every request line
as the server receives it (before any normalisation: ``../`` would have turned a Pod read into a
Secret read). Hostile names and namespaces go through every read the gateway has; each must be
refused, audited as such, counted, and reach the server not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aetherius.gateway import BackendError, ExecutionGateway, MemoryAuditSink, live_gateway
from aetherius.kube import KubeClient
from aetherius.names import REJECTED_NAMES, name_problem, namespace_problem
from aetherius.sim import SimCluster
from aetherius.sim.cluster import write_kubeconfig
from tests.services import free_port
from tests.sim.conftest import pod

HOSTILE = [
    "../secrets/db",
    "..",
    ".",
    "%2e%2e/secrets/db",
    "api?watch=true&timeoutSeconds=1",
    "api#fragment",
    "api/log",
    "api\x00",
    "api\n",
    " api",
    "Api",
    "ünïcödé",
    "a" * 254,
    "",
    "api,involvedObject.namespace=kube-system",
    "api;x",
    "\\..\\secrets",
]


class RecordingProxy:
    """Forwards to the sim and keeps each request's raw target (path and query, as sent)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.targets: list[str] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.targets.append(request.raw_path)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept", "authorization")}
        async with self._session.get(
            self.upstream + request.raw_path, headers=headers, allow_redirects=False
        ) as upstream:
            body = await upstream.read()
            return web.Response(body=body, status=upstream.status, content_type=upstream.content_type)

    async def __aenter__(self) -> RecordingProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[ExecutionGateway, RecordingProxy, MemoryAuditSink]]:
    async with SimCluster() as sim, RecordingProxy(sim.url) as proxy:
        sim.create(pod("api-1"))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url=f"http://127.0.0.1:{proxy.port}")
        async with await KubeClient.from_kubeconfig(kubeconfig) as client:
            audit = MemoryAuditSink()
            yield live_gateway(client, cluster="sim", audit=audit), proxy, audit


async def _every_read(gateway: ExecutionGateway, *, namespace: str, name: str) -> int:
    """Each read of the gateway with this namespace and name; how many were refused."""
    reads = [
        gateway.get_object("Pod", requester="t", namespace=namespace, name=name),
        gateway.get_object("ConfigMap", requester="t", namespace=namespace, name=name),
        gateway.events_for(requester="t", kind="Pod", namespace=namespace, name=name),
        gateway.pod_logs(requester="t", namespace=namespace, name=name, container="app"),
        gateway.pod_logs(requester="t", namespace=namespace, name="api-1", container=name),
        gateway.list_objects("Pod", requester="t", namespace=namespace),
        gateway.node_state(requester="t", name=name),
    ]
    refused = 0
    for read in reads:
        try:
            await read
        except BackendError as exc:
            assert "refused" in str(exc), exc
            refused += 1
    return refused


async def test_hostile_names_reach_no_path(
    proxied: tuple[ExecutionGateway, RecordingProxy, MemoryAuditSink],
) -> None:
    gateway, proxy, audit = proxied
    before = REJECTED_NAMES.labels(entry="gateway")._value.get()
    for hostile in HOSTILE:
        assert await _every_read(gateway, namespace="shop", name=hostile) == 6, hostile
        if hostile:  # "" as a namespace is no namespace: a cluster-wide read, allowed
            assert await _every_read(gateway, namespace=hostile, name="api-1") == 6, hostile
    # Only the reads in which nothing was hostile went out: the namespace's LIST, the node by name.
    legitimate = {"/api/v1/namespaces/shop/pods", "/api/v1/nodes/api-1", "/api/v1/pods"}
    assert {t.split("?")[0] for t in proxy.targets} <= legitimate, proxy.targets
    proxy.targets.clear()
    rejected = [r for r in audit.records if r.outcome.startswith("rejected")]
    assert len(rejected) == 12 * len(HOSTILE) - 6, "every refusal is in the audit"
    assert REJECTED_NAMES.labels(entry="gateway")._value.get() - before == len(rejected)

    # The same reads with real names send exactly the kind table's paths.
    assert await _every_read(gateway, namespace="shop", name="api-1") == 0
    assert sorted(t.split("?")[0] for t in proxy.targets) == sorted(
        [
            "/api/v1/namespaces/shop/pods/api-1",
            "/api/v1/namespaces/shop/configmaps/api-1",
            "/api/v1/namespaces/shop/events",
            "/api/v1/namespaces/shop/pods/api-1/log",
            "/api/v1/namespaces/shop/pods/api-1/log",
            "/api/v1/namespaces/shop/pods",
            "/api/v1/nodes/api-1",
        ]
    )
    assert all("secrets" not in t for t in proxy.targets)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=80), namespace=st.sampled_from(["shop", "kube-system"]))
async def test_any_name_is_read_at_its_own_path_or_not_at_all(
    proxied: tuple[ExecutionGateway, RecordingProxy, MemoryAuditSink], name: str, namespace: str
) -> None:
    gateway, proxy, _ = proxied
    proxy.targets.clear()
    try:
        await gateway.get_object("Pod", requester="t", namespace=namespace, name=name)
    except BackendError:
        assert name_problem("Pod", name) or namespace_problem(namespace)
        assert proxy.targets == []
        return
    assert proxy.targets == [f"/api/v1/namespaces/{namespace}/pods/{name}"]
