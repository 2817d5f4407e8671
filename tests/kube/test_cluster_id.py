"""Cluster id detection against the sim, in the deployment guide's order."""

from __future__ import annotations

from pathlib import Path

import pytest

from aetherius.kube import KubeClient
from aetherius.kube.cluster_id import ClusterIdError, detect_cluster_id
from aetherius.sim import SimCluster


async def _client(sim: SimCluster, tmp_path: Path) -> KubeClient:
    return await KubeClient.from_kubeconfig(sim.write_kubeconfig(tmp_path / "kubeconfig"))


async def test_order_env_configmap_namespace_uid_node_label(tmp_path: Path) -> None:
    async with SimCluster() as sim:
        client = await _client(sim, tmp_path)
        async with client:
            assert await detect_cluster_id(client, configured="prod-eu-1") == ("prod-eu-1", "env")

            for ns in ("kube-system", "aetherius-system"):
                if sim.find("Namespace", "", ns) is None:
                    sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            uid = sim.get("Namespace", "", "kube-system")["metadata"]["uid"]
            assert await detect_cluster_id(client, namespace="aetherius-system") == (
                f"cluster-{uid[:8]}",
                "namespace_uid",
            )

            sim.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "aetherius-config", "namespace": "aetherius-system"},
                    "data": {"cluster_id": "from-configmap"},
                }
            )
            assert await detect_cluster_id(client, namespace="aetherius-system") == (
                "from-configmap",
                "configmap",
            )

            sim.delete("ConfigMap", "aetherius-system", "aetherius-config")
            sim.delete("Namespace", "", "kube-system")
            with pytest.raises(ClusterIdError, match="kube-system"):
                await detect_cluster_id(client, namespace="aetherius-system")
            sim.create(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": "ip-10-0-0-1",
                        "labels": {"alpha.eksctl.io/cluster-name": "shop-eks"},
                    },
                }
            )
            assert await detect_cluster_id(client, namespace="aetherius-system") == (
                "shop-eks",
                "node_label_eks",
            )


async def test_an_unreachable_api_server_is_named_as_the_problem(tmp_path: Path) -> None:
    from aetherius.sim.cluster import write_kubeconfig
    from tests.services import free_port

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url=f"http://127.0.0.1:{free_port()}")
    async with await KubeClient.from_kubeconfig(kubeconfig) as client:
        with pytest.raises(ClusterIdError) as caught:
            await detect_cluster_id(client)
    assert "cannot reach the API server at http://127.0.0.1:" in str(caught.value)
    assert "CLUSTER_ID" not in str(caught.value)  # setting it would not help
