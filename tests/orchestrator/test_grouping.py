from __future__ import annotations

import msgspec
import pytest

from aetherius.orchestrator.grouping import failure_class, incident_key, workload_of
from aetherius.signals import ObjectRef
from tests.orchestrator.factories import pod_signal


@pytest.mark.parametrize(
    ("reason", "message", "expected"),
    [
        ("OOMKilled", "", "crash"),
        ("CrashLoopBackOff", "", "crash"),
        ("BackOff", "Back-off restarting failed container api in pod api-x", "crash"),
        ("Error", "", "crash"),
        ("ErrImagePull", "", "image"),
        ("ImagePullBackOff", "", "image"),
        ("BackOff", 'Back-off pulling image "shop/api:9.9"', "image"),
        ("Failed", 'Failed to pull image "shop/api:9.9": not found', "image"),
        ("Failed", "Error: ErrImagePull", "image"),
        ("InvalidImageName", "", "image"),
        ("FailedScheduling", "0/3 nodes are available: 3 Insufficient memory.", "scheduling"),
        ("Unschedulable", "", "scheduling"),
        ("CreateContainerConfigError", "", "config"),
        ("Failed", 'Error: configmap "api-config" not found', "config"),
        ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", "probe"),
        ("FailedMount", "", "mount"),
        ("SomethingNew", "", "somethingnew"),
    ],
)
def test_failure_class(reason: str, message: str, expected: str) -> None:
    assert failure_class(reason, message) == expected


def test_replicaset_owner_maps_to_deployment_by_template_hash() -> None:
    signal = pod_signal(reason="OOMKilled", pod="api-7d9f8c6b5-x2k4q", rs="api-7d9f8c6b5")
    assert workload_of(signal) == ObjectRef(kind="Deployment", namespace="shop", name="api")


def test_replicaset_without_labels_maps_by_name_shape() -> None:
    signal = pod_signal(reason="OOMKilled", rs="web-frontend-5c8d7bf9d4")
    signal = msgspec.structs.replace(signal, labels={})
    assert workload_of(signal).name == "web-frontend"
    assert workload_of(signal).kind == "Deployment"


def test_replicaset_not_named_like_a_deployment_stays() -> None:
    signal = pod_signal(reason="OOMKilled", rs="standalone")
    signal = msgspec.structs.replace(signal, labels={})
    assert workload_of(signal) == ObjectRef(kind="ReplicaSet", namespace="shop", name="standalone")


def test_unowned_pod_is_its_own_workload() -> None:
    signal = pod_signal(reason="OOMKilled", pod="lonely", rs=None)
    assert workload_of(signal) == ObjectRef(kind="Pod", namespace="shop", name="lonely")


def test_three_crashing_pods_of_a_deployment_are_one_fingerprint() -> None:
    keys = {
        incident_key(pod_signal(reason=reason, pod=pod)).fingerprint
        for pod, reason in [
            ("api-7d9f8c6b5-aaaaa", "OOMKilled"),
            ("api-7d9f8c6b5-bbbbb", "CrashLoopBackOff"),
            ("api-7d9f8c6b5-ccccc", "BackOff"),
        ]
    }
    assert len(keys) == 1


def test_different_failures_or_clusters_are_different_fingerprints() -> None:
    crash = incident_key(pod_signal(reason="OOMKilled")).fingerprint
    image = incident_key(pod_signal(reason="ErrImagePull")).fingerprint
    other_cluster = incident_key(pod_signal(reason="OOMKilled", cluster="other")).fingerprint
    other_deploy = incident_key(pod_signal(reason="OOMKilled", rs="web-7d9f8c6b5")).fingerprint
    assert len({crash, image, other_cluster, other_deploy}) == 4
