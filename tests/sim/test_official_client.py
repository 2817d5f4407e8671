"""The official ``kubernetes`` client (sync) lists, pages and watches the sim like a real cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client import ApiException

from aetherius.sim import SimHandle
from tests.sim.conftest import pod


def _watch() -> Any:
    return watch.Watch()  # type: ignore[no-untyped-call]


@pytest.fixture
def core(sim_thread: SimHandle, tmp_path: Path) -> Any:
    api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(sim_thread.write_kubeconfig(tmp_path / "kc"))
    )
    return client.CoreV1Api(api_client)


def test_list_paging_and_models(sim_thread: SimHandle, core: Any) -> None:
    for index in range(5):
        sim_thread.sim.create(pod(f"p{index}", labels={"app": "api" if index % 2 else "web"}))
    page = core.list_namespaced_pod("shop", limit=2)
    assert [p.metadata.name for p in page.items] == ["p0", "p1"]
    assert page.metadata.remaining_item_count == 3
    rest = core.list_namespaced_pod("shop", limit=10, _continue=page.metadata._continue)
    assert [p.metadata.name for p in rest.items] == ["p2", "p3", "p4"]
    selected = core.list_pod_for_all_namespaces(
        label_selector="app=api", field_selector="status.phase=Running"
    )
    assert sorted(p.metadata.name for p in selected.items) == ["p1", "p3"]
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("nope", "shop")
    assert missing.value.status == 404


def test_watch_stream_with_replay_and_410(sim_thread: SimHandle, core: Any) -> None:
    start = sim_thread.resource_version
    sim_thread.sim.create(pod("a"))
    sim_thread.sim.patch("Pod", "shop", "a", {"status": {"phase": "Failed"}})
    seen = [
        (event["type"], event["object"].status.phase)
        for event in _watch().stream(
            core.list_namespaced_pod, "shop", resource_version=str(start), timeout_seconds=1
        )
    ]
    assert seen == [("ADDED", "Running"), ("MODIFIED", "Failed")]
    for index in range(60):
        sim_thread.sim.patch("Pod", "shop", "a", {"metadata": {"labels": {"n": str(index)}}})
    with pytest.raises(ApiException) as gone:
        for _ in _watch().stream(core.list_namespaced_pod, "shop", resource_version=str(start)):
            pass
    assert gone.value.status == 410
    sim_thread.faults.gone_on_connect(1)
    with pytest.raises(ApiException) as on_connect:
        for _ in _watch().stream(core.list_namespaced_pod, "shop", resource_version=str(start + 70)):
            pass
    assert on_connect.value.status == 410
