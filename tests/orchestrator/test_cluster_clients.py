"""Out-of-cluster mode's clients as ``aetherius orchestrator`` opens them: one per ``clusters:``
entry, each named, and the diagnoser's readers routing every cluster to its own API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from aetherius.config import load_settings
from aetherius.gateway.readers import NoReader
from aetherius.orchestrator.clients import StartError, open_cluster_clients
from aetherius.orchestrator.process import cluster_readers
from aetherius.sim import SimCluster
from tests.compose.clusters import checkout_only, demo_variant, fresh_uid


async def test_each_cluster_is_read_through_its_own_client(tmp_path: Path) -> None:
    uid = fresh_uid()
    async with SimCluster(demo_variant(checkout_only, uid=uid)) as one, SimCluster() as two:
        settings = load_settings(
            env={},
            overrides={
                ("clusters",): [
                    {"kubeconfig": str(one.write_kubeconfig(tmp_path / "one.yaml"))},
                    {"name": "two", "kubeconfig": str(two.write_kubeconfig(tmp_path / "two.yaml"))},
                ]
            },
        )
        clients = await open_cluster_clients(settings)
        try:
            assert [(c.cluster_id, c.detected_by) for c in clients] == [
                (f"cluster-{uid[:8]}", "namespace_uid"),
                ("two", "env"),
            ]
            readers = cluster_readers(settings, kube=clients[0].kube, clusters=clients)
            first = readers.backend_for(f"cluster-{uid[:8]}")
            assert readers.backend_for("two") is not first
            found, _ = await first.get("Namespace", namespace=None, name="shop")
            assert found is not None and found["metadata"]["name"] == "shop"
            missing, _ = await readers.backend_for("two").get("Namespace", namespace=None, name="shop")
            assert missing is None, "the second cluster (empty) has no shop"
            with pytest.raises(NoReader, match="this process reads 'cluster-"):
                readers.backend_for("three")
        finally:
            for client in clients:
                await client.kube.close()


async def test_an_entry_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={("clusters",): [{"kubeconfig": str(tmp_path / "missing")}]})
    with pytest.raises(StartError, match=r"clusters\.0 \(.*missing\): cannot load cluster credentials"):
        await open_cluster_clients(settings)


async def test_an_unreachable_cluster_is_a_start_error_naming_its_entry(tmp_path: Path) -> None:
    async with SimCluster() as sim:
        kubeconfig = sim.write_kubeconfig(tmp_path / "gone.yaml")
    settings = load_settings(env={}, overrides={("clusters",): [{"kubeconfig": str(kubeconfig)}]})
    with pytest.raises(
        StartError, match=r"clusters\.0 \(.*gone\.yaml\): cannot name the cluster: cannot reach"
    ):
        await open_cluster_clients(settings)


async def test_a_cluster_without_an_id_asks_for_a_name(tmp_path: Path) -> None:
    async with SimCluster() as sim:  # empty: no kube-system, no ConfigMap, no nodes
        settings = load_settings(
            env={},
            overrides={("clusters",): [{"kubeconfig": str(sim.write_kubeconfig(tmp_path / "k.yaml"))}]},
        )
        with pytest.raises(StartError, match=r"cannot detect the cluster id \(give the entry a name\)"):
            await open_cluster_clients(settings)
