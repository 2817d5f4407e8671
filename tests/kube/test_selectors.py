"""One selector grammar: the simulated API server and a snapshot file select the same objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from aetherius.gateway import snapshot_gateway
from aetherius.kube import KubeClient
from aetherius.kube.selectors import SelectorError, label_matcher
from aetherius.sim import SimCluster
from tests.sim.conftest import pod

PODS = [
    pod("a1", labels={"app": "api", "tier": "backend", "canary": "true"}),
    pod("a2", labels={"app": "api", "canary": "false"}),
    pod("b1", labels={"app": "web", "tier": "front"}),
    pod("n1"),
]
SELECTORS = [
    "app=api",
    "app!=api",
    "app in (api,web)",
    "app notin (api)",
    "tier",
    "!tier",
    "app in (api, web),!tier",
    "canary=true",
    "canary!=true",
    "canary in (false)",
]


async def test_the_sim_and_a_snapshot_select_the_same_pods(tmp_path: Path) -> None:
    # NB: a snapshot written by hand as YAML says ``canary: true``, a boolean; the server only
    # ever holds label strings. Both must read it as "true".
    snapshot_pods: list[dict[str, Any]] = orjson.loads(orjson.dumps(PODS))
    snapshot_pods[0]["metadata"]["labels"]["canary"] = True
    snapshot_pods[1]["metadata"]["labels"]["canary"] = False
    path = tmp_path / "pods.json"
    path.write_bytes(orjson.dumps({"kind": "List", "items": snapshot_pods}))
    gateway = snapshot_gateway(path)
    async with SimCluster() as sim:
        for obj in PODS:
            sim.create(obj)
        async with await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kc")) as kube:
            for selector in SELECTORS:
                served, _ = await kube.list_all("/api/v1/pods", params={"labelSelector": selector})
                read = await gateway.list_objects("Pod", requester="t", label_selector=selector)
                names = sorted(p["metadata"]["name"] for p in served)
                assert names == sorted(p["metadata"]["name"] for p in read), selector
                assert names, selector


@pytest.mark.parametrize("selector", ["app in (a", "a b=c", "app=a b", "-x=1", "app=" + "v" * 64, "x,,y"])
def test_a_selector_the_server_refuses_is_refused_with_its_message(selector: str) -> None:
    with pytest.raises(SelectorError, match=r"unable to parse requirement|invalid selector"):
        label_matcher(selector)
