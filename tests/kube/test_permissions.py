"""Credentials that could write are found by asking the API server (a SelfSubjectRulesReview),
against the simulated cluster's per-token rules: a writer is reported with its verbs, resources
and namespaces, a reader is not, and the questions every user may ask are not writes.
"""

from __future__ import annotations

from pathlib import Path

from aetherius.kube import KubeClient
from aetherius.kube.permissions import WriteAccess, write_access, write_rules
from aetherius.orchestrator.clients import check_write_access
from aetherius.sim import SimCluster

EVERYTHING = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
DEPLOYER = [
    {"verbs": ["get", "list", "watch"], "apiGroups": ["*"], "resources": ["*"]},
    {"verbs": ["patch", "update"], "apiGroups": ["apps"], "resources": ["deployments", "statefulsets"]},
]


async def test_a_writer_is_reported_a_reader_is_not(tmp_path: Path) -> None:
    async with SimCluster() as sim:
        sim.grant("admin", EVERYTHING)
        sim.grant("deployer", DEPLOYER, namespace="default")
        sim.grant("deployer", [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}])
        found: dict[str, list[WriteAccess]] = {}
        for token in ("admin", "deployer", "aetherius-sim-token"):
            kubeconfig = sim.write_kubeconfig(tmp_path / token, token=token)
            async with await KubeClient.from_kubeconfig(kubeconfig) as client:
                found[token] = await write_access(client)
    assert [a.describe() for a in found["admin"]] == ["* on * in default", "* on * in kube-system"]
    # A RoleBinding in one namespace: only that namespace's review shows it.
    assert [a.describe() for a in found["deployer"]] == [
        "patch, update on deployments.apps, statefulsets.apps in default"
    ]
    assert found["aetherius-sim-token"] == [], "read-only rules (and asking about oneself) write nothing"


async def test_the_warning_is_one_line_and_only_for_a_writer(tmp_path: Path) -> None:
    said: list[str] = []
    async with SimCluster() as sim:
        sim.grant("admin", EVERYTHING)
        for token in ("admin", "aetherius-sim-token"):
            kubeconfig = sim.write_kubeconfig(tmp_path / token, token=token)
            async with await KubeClient.from_kubeconfig(kubeconfig) as client:
                await check_write_access(client, label=token, announce=said.append)
    assert len(said) == 1, said
    assert said[0].startswith(
        "Warning: admin can change the cluster (* on * in default; * on * in kube-system)"
    )
    assert "Aetherius only reads" in said[0]


async def test_a_check_that_cannot_be_made_is_no_warning(tmp_path: Path) -> None:
    said: list[str] = []
    async with SimCluster() as sim:
        kubeconfig = sim.write_kubeconfig(tmp_path / "k")
        sim.faults.error(10, status=404, path_prefix="/apis/authorization.k8s.io")
        async with await KubeClient.from_kubeconfig(kubeconfig) as client:
            assert await check_write_access(client, label="old", announce=said.append) is False
    assert said == []


def test_rules_of_other_shapes() -> None:
    review = {
        "status": {
            "resourceRules": [
                {
                    "verbs": ["create"],
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews"],
                },
                {"verbs": ["DELETE"], "apiGroups": [""], "resources": ["pods", "pods/log"]},
                {"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"]},
                "not a rule",
            ],
            "incomplete": True,
        }
    }
    access = write_rules(review, namespace="shop")
    assert access == WriteAccess(
        namespace="shop", verbs=("delete",), resources=("pods", "pods/log"), incomplete=True
    )
    assert write_rules({"status": {}}, namespace="shop") is None
