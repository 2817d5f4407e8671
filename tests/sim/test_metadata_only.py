"""Metadata-only reads (``as=PartialObjectMetadata(List)``) against the sim, with our client, the
official client's models and the real kubectl: only ``metadata`` is sent, for every kind."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from aetherius.kube import KubeApiError, KubeClient, KubeConnectionError
from aetherius.kube.client import METADATA_LIST, METADATA_OBJECT
from aetherius.sim import SimCluster, SimHandle

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
SECRET_VALUE = "dG9wLXNlY3JldC12YWx1ZQ=="


def _secret(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "shop", "labels": {"tier": "db"}},
        "type": "Opaque",
        "data": {"password": SECRET_VALUE},
    }


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    async with SimCluster() as cluster:
        for i in range(5):
            cluster.create(_secret(f"db-{i}"))
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "shop"},
                "data": {"k": "v"},
            }
        )
        cluster.create(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "api", "namespace": "shop"},
                "spec": {
                    "selector": {"matchLabels": {"app": "api"}},
                    "template": {
                        "metadata": {"labels": {"app": "api"}},
                        "spec": {"containers": [{"name": "a", "image": "x"}]},
                    },
                },
            }
        )
        yield cluster


@pytest.fixture
async def client(sim: SimCluster, tmp_path: Path) -> AsyncIterator[KubeClient]:
    async with await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig")) as kube:
        yield kube


async def test_a_metadata_list_pages_and_carries_nothing_but_metadata(
    sim: SimCluster, client: KubeClient
) -> None:
    sent = sim.record_responses("/api/v1/namespaces/shop/secrets")
    items, rv = await client.list_all("/api/v1/namespaces/shop/secrets", limit=2, metadata_only=True)
    assert sorted(item["metadata"]["name"] for item in items) == [f"db-{i}" for i in range(5)]
    assert all(set(item) == {"kind", "apiVersion", "metadata"} for item in items)
    assert {(item["kind"], item["apiVersion"]) for item in items} == {
        ("PartialObjectMetadata", "meta.k8s.io/v1")
    }
    assert items[0]["metadata"]["labels"] == {"tier": "db"} and rv == str(sim.resource_version)
    assert len(sent) == 3  # three pages, each metadata-only, continue tokens honoured
    for response in sent:
        page = orjson.loads(response.body)
        assert (page["kind"], page["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
        assert SECRET_VALUE.encode() not in response.body and b"Opaque" not in response.body


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/namespaces/shop/secrets", "db-0"),
        ("/api/v1/namespaces/shop/configmaps", "c"),
        ("/apis/apps/v1/namespaces/shop/deployments", "api"),
    ],
)
async def test_every_kind_has_the_metadata_forms(client: KubeClient, path: str, name: str) -> None:
    (page,) = [p async for p in client.list_pages(path, metadata_only=True)]
    assert page["kind"] == "PartialObjectMetadataList" and page["items"]
    obj = await client.get_json(f"{path}/{name}", metadata_only=True)
    assert set(obj) == {"kind", "apiVersion", "metadata"} and obj["kind"] == "PartialObjectMetadata"
    assert obj["metadata"]["name"] == name
    whole = await client.get_json(f"{path}/{name}")  # no header: the whole object, as before
    assert set(whole) - {"kind", "apiVersion", "metadata"}


async def test_the_wrong_form_is_406_never_whole_objects(client: KubeClient) -> None:
    path = "/api/v1/namespaces/shop/secrets"
    with pytest.raises(KubeApiError) as on_list:
        await client.get_bytes(path, accept=METADATA_OBJECT)
    assert on_list.value.status == 406 and "is a list" in on_list.value.message
    with pytest.raises(KubeApiError) as on_object:
        await client.get_bytes(f"{path}/db-0", accept=METADATA_LIST)
    assert on_object.value.status == 406 and "not a list" in on_object.value.message
    with pytest.raises(KubeApiError) as unknown:
        await client.get_bytes(path, accept="application/json;as=Nothing;g=meta.k8s.io;v=v1")
    assert unknown.value.status == 406
    # the client-go metadata client's header, with its fall backs: the first servable clause wins
    body = await client.get_bytes(
        path,
        accept="application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
    )
    assert orjson.loads(body)["kind"] == "PartialObjectMetadataList"


async def test_a_metadata_watch_streams_partial_objects(sim: SimCluster, client: KubeClient) -> None:
    params = {"watch": True, "resourceVersion": "0", "timeoutSeconds": 1}
    path = "/api/v1/namespaces/shop/secrets"
    async with client._request("GET", path, params=params, accept=METADATA_OBJECT) as response:
        lines = [line for line in (await response.read()).splitlines() if line]
    events = [orjson.loads(line) for line in lines]
    assert len(events) == 5 and all(e["object"]["kind"] == "PartialObjectMetadata" for e in events)
    assert all(SECRET_VALUE.encode() not in line for line in lines)


async def test_a_server_ignoring_the_header_is_refused(tmp_path: Path) -> None:
    """A server that sends whole objects anyway: the client raises instead of handing them on."""

    async def whole(_: web.Request) -> web.Response:
        return web.json_response(
            {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": [_secret("x")]}
        )

    app = web.Application()
    app.router.add_get("/api/v1/secrets", whole)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        from aetherius.sim.cluster import write_kubeconfig

        config = write_kubeconfig(tmp_path / "kc", url=f"http://127.0.0.1:{port}")
        async with await KubeClient.from_kubeconfig(config) as kube:
            with pytest.raises(KubeConnectionError, match="asked for PartialObjectMetadataList"):
                await kube.list_all("/api/v1/secrets", metadata_only=True)
    finally:
        await runner.cleanup()


def test_the_official_client_reads_the_form(tmp_path: Path) -> None:
    import kubernetes

    handle = SimCluster.start_in_thread(None)
    try:
        handle.sim.create(_secret("db-0"))
        api_client = kubernetes.config.new_client_from_config(
            config_file=str(handle.write_kubeconfig(tmp_path / "kc"))
        )
        api = kubernetes.client.CoreV1Api(api_client)
        raw = api.list_namespaced_secret("shop", _preload_content=False, _headers={"Accept": METADATA_LIST})
        assert SECRET_VALUE.encode() not in raw.data
        # NB: this client has no PartialObjectMetadata model; each item's metadata is a V1ObjectMeta
        page = orjson.loads(raw.data)
        assert (page["kind"], page["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
        (item,) = page["items"]
        parsed = api_client.deserialize(
            orjson.dumps(item["metadata"]).decode(), "V1ObjectMeta", "application/json"
        )
        assert parsed.name == "db-0" and parsed.labels == {"tier": "db"} and parsed.uid
    finally:
        handle.stop()


@pytest.fixture
def secrets_sim(tmp_path: Path) -> Iterator[tuple[SimHandle, Path]]:
    handle = SimCluster.start_in_thread(None)
    try:
        handle.sim.create(_secret("db-0"))
        yield handle, handle.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
    finally:
        handle.stop()


def test_kubectl_still_lists_secrets(secrets_sim: tuple[SimHandle, Path]) -> None:
    """kubectl's Table rows carry PartialObjectMetadata; ``-o name`` lists plain JSON."""
    _, config = secrets_sim
    for args, want in (
        (["get", "secrets", "-o", "name"], "secret/db-0"),
        (["get", "secret", "db-0", "-o", "name"], "secret/db-0"),
        (["get", "secrets"], "db-0"),
        (["get", "secrets", "-o", "jsonpath={.items[*].metadata.name}"], "db-0"),
    ):
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(config), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert want in result.stdout
