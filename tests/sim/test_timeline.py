"""The timeline writes what a kubelet and scheduler would, on a virtual clock (no sleeping)."""

from __future__ import annotations

from typing import Any

import pytest

from aetherius.sim import SimCluster
from aetherius.sim.scenario import ScenarioError, load_scenario, parse_scenario
from aetherius.sim.timeline import TimelineError
from tests.sim.conftest import pod


def _pod(name: str, **kwargs: Any) -> dict[str, Any]:
    obj = pod(name, **kwargs)
    obj["spec"].pop("nodeName")
    obj["status"] = {"phase": "Pending"}
    return obj


def _events(sim: SimCluster, name: str) -> dict[str, dict[str, Any]]:
    return {
        f"{e['reason']}:{e['message'][:40]}": e
        for e in sim.list("Event", "shop")
        if e["involvedObject"]["name"] == name
    }


async def test_crashloop_oom_sequence(sim: SimCluster) -> None:
    sim.create(_pod("api"))
    sim.timeline.extend(
        [
            {"at": 0, "pod": "shop/api", "schedule": {"node": "node-1"}},
            {"at": "2s", "pod": "shop/api", "crashloop": {"reason": "OOMKilled", "exit_code": 137,
                                                          "run_for": "5s", "restarts": 3, "logs": "heap=250Mi"}},
        ]
    )
    assert sim.timeline.advance(1) == 1
    scheduled = sim.get("Pod", "shop", "api")
    assert scheduled["spec"]["nodeName"] == "node-1"
    assert scheduled["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    sim.timeline.advance(2)  # t=3: running
    running = sim.get("Pod", "shop", "api")["status"]
    assert running["phase"] == "Running" and "running" in running["containerStatuses"][0]["state"]
    sim.timeline.advance(5)  # t=8: first death, in back-off
    status = sim.get("Pod", "shop", "api")["status"]["containerStatuses"][0]
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert status["restartCount"] == 0 and status["ready"] is False
    sim.timeline.run_to_end()
    final = sim.get("Pod", "shop", "api")["status"]["containerStatuses"][0]
    assert final["restartCount"] == 3 and final["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    events = _events(sim, "api")
    backoff = next(e for key, e in events.items() if key.startswith("BackOff"))
    uid = sim.get("Pod", "shop", "api")["metadata"]["uid"]
    assert backoff["message"] == f"Back-off restarting failed container app in pod api_shop({uid})"
    assert backoff["type"] == "Warning" and backoff["count"] > 3
    assert backoff["lastTimestamp"] >= backoff["firstTimestamp"]
    assert backoff["source"] == {"component": "kubelet", "host": "node-1"}
    assert backoff["involvedObject"]["fieldPath"] == "spec.containers{app}"
    # The Event was updated in place (count), not duplicated: one object, several MODIFIED.
    changes = [e.type for e in sim.ledger if e.kind == "Event" and e.name == backoff["metadata"]["name"]]
    assert changes[0] == "ADDED" and set(changes[1:]) == {"MODIFIED"}
    assert sim.logs.lines("shop", "api", "app", previous=True)[-1][1] == "heap=250Mi"
    scheduled_event = next(e for key, e in events.items() if key.startswith("Scheduled"))
    assert scheduled_event["reportingComponent"] == "default-scheduler" and scheduled_event["eventTime"]


async def test_image_pull_config_probe_and_scheduling_failures(sim: SimCluster) -> None:
    for name in ("img", "cfg", "probe", "big"):
        sim.create(_pod(name))
    sim.timeline.extend(
        [
            {"pod": "shop/img", "schedule": {"node": "node-2"}},
            {"at": 1, "pod": "shop/img", "image_pull_error": {"error": "unauthorized", "retries": 2}},
            {"pod": "shop/cfg", "schedule": {"node": "node-2"}},
            {"at": 1, "pod": "shop/cfg", "config_error": {"message": 'configmap "x" not found', "retries": 1}},
            {"pod": "shop/probe", "schedule": {"node": "node-3"}},
            {"at": 1, "pod": "shop/probe", "probe_failure": {"repeat": 3, "every": "10s"}},
            {"pod": "shop/big", "unschedulable": {"message": "0/3 nodes are available: 3 Insufficient memory.",
                                                  "retries": 2, "every": 5}},
        ]
    )
    sim.timeline.advance(1.5)
    img = sim.get("Pod", "shop", "img")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert img["reason"] == "ErrImagePull" and "401 Unauthorized" in img["message"]
    sim.timeline.run_to_end()
    img = sim.get("Pod", "shop", "img")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert img == {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "registry.local/app:1"'}
    img_events = {(e["reason"], e["type"], e["message"]) for e in sim.list("Event", "shop")
                  if e["involvedObject"]["name"] == "img"}
    assert ("BackOff", "Normal", 'Back-off pulling image "registry.local/app:1"') in img_events
    assert ("Failed", "Warning", "Error: ErrImagePull") in img_events
    assert any(r == "Failed" and m.startswith('Failed to pull image "registry.local/app:1": ') for r, _, m in img_events)

    cfg = sim.get("Pod", "shop", "cfg")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert cfg == {"reason": "CreateContainerConfigError", "message": 'configmap "x" not found'}
    failed = next(e for e in sim.list("Event", "shop") if e["involvedObject"]["name"] == "cfg" and e["reason"] == "Failed")
    assert failed["message"] == 'Error: configmap "x" not found' and failed["count"] == 2

    probe = sim.get("Pod", "shop", "probe")["status"]
    assert probe["phase"] == "Running" and probe["containerStatuses"][0]["ready"] is False
    ready = next(c for c in probe["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ContainersNotReady")
    unhealthy = next(e for e in sim.list("Event", "shop") if e["reason"] == "Unhealthy")
    assert unhealthy["message"] == "Readiness probe failed: HTTP probe failed with statuscode: 503"
    assert unhealthy["count"] == 3

    big = sim.get("Pod", "shop", "big")["status"]
    assert big["conditions"][0]["reason"] == "Unschedulable" and big["phase"] == "Pending"
    scheduling = next(e for e in sim.list("Event", "shop") if e["reason"] == "FailedScheduling")
    assert scheduling["message"] == "0/3 nodes are available: 3 Insufficient memory."
    assert scheduling["series"]["count"] == 3 and "count" not in scheduling  # events.k8s.io style
    v1 = sim.get("events.events.k8s.io", "shop", scheduling["metadata"]["name"])
    assert v1["reportingController"] == "default-scheduler" and v1["series"]["count"] == 3


async def test_timeline_rejects_bad_steps(sim: SimCluster) -> None:
    for step in ({"pod": "shop/x", "explode": {}}, {"pod": "shop/x", "run": {}, "log": {}}, {"at": "soon", "pod": "a/b", "log": {"text": "x"}}):
        with pytest.raises(TimelineError):
            sim.timeline.extend([step])
    with pytest.raises(ValueError):
        sim.timeline.advance(-1)


def test_demo_scenario_shape() -> None:
    scenario = load_scenario("demo")
    kinds = {obj["kind"] for obj in scenario.objects}
    assert {"Namespace", "Node", "Deployment", "ReplicaSet", "Pod", "Service", "Endpoints", "ConfigMap",
            "StatefulSet", "DaemonSet", "Ingress", "IngressClass", "StorageClass", "PersistentVolumeClaim",
            "PersistentVolume", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ResourceQuota"} <= kinds
    assert len([o for o in scenario.objects if o["kind"] == "Node"]) == 3
    by_uid = {o["metadata"]["uid"]: o for o in scenario.objects}
    for obj in scenario.objects:
        for owner in obj["metadata"].get("ownerReferences") or []:
            assert by_uid[owner["uid"]]["metadata"]["name"] == owner["name"]  # owners really exist
    assert scenario.logs and scenario.timeline


def test_scenario_errors_are_clear(tmp_path: Any) -> None:
    with pytest.raises(ScenarioError, match="no scenario named"):
        load_scenario("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed")
    with pytest.raises(ScenarioError, match="not valid JSON or YAML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="holds no objects"):
        parse_scenario("apiVersion: x/v1\nkind: Unknown\nmetadata: {name: a}\n")
    listed = parse_scenario('{"apiVersion": "v1", "kind": "PodList", "items": [{"metadata": {"name": "p"}}]}')
    assert listed.objects[0]["kind"] == "Pod"
