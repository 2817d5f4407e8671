"""The node agent's Signals land in the incidents they explain, and reports cite them."""

from __future__ import annotations

from datetime import UTC, datetime

from aetherius.orchestrator.grouping import incident_key
from aetherius.reports.build import build_report
from aetherius.reports.model import Finding
from aetherius.signals import ObjectRef, Signal
from aetherius.store.records import Incident, SignalRecord

POD = ObjectRef(kind="Pod", namespace="shop", name="cache-7d9f8-x2k4q")
OWNER = ObjectRef(kind="ReplicaSet", namespace="shop", name="cache-7d9f8")


def _signal(source: str, reason: str, *, obj: ObjectRef = POD, owner: ObjectRef | None = OWNER) -> Signal:
    return Signal(
        cluster_id="c1",
        source=source,
        object=obj,
        owner=owner,
        reason=reason,
        message=reason,
        severity="critical",
        dedup_key=f"{source}-{reason}",
        labels={"pod-template-hash": "7d9f8"} if owner else {},
    )


def test_a_kernel_oom_kill_joins_the_pod_s_crash_incident() -> None:
    watcher = incident_key(_signal("pod", "OOMKilled"))
    kernel = incident_key(_signal("node-agent", "KernelOOMKill"))
    assert kernel == watcher
    assert watcher.workload == ObjectRef(kind="Deployment", namespace="shop", name="cache")


def test_what_the_kernel_says_of_a_node_joins_the_node_s_pressure() -> None:
    node = ObjectRef(kind="Node", name="node-1")
    pressure = incident_key(_signal("node-agent", "NodePressure", obj=node, owner=None))
    for reason in ("FilesystemReadOnly", "KernelIOError", "ConntrackTableFull", "KernelHungTask"):
        assert incident_key(_signal("node-agent", reason, obj=node, owner=None)) == pressure
    assert incident_key(_signal("event", "NodeNotReady", obj=node, owner=None)) == pressure


def test_a_report_cites_what_the_node_agent_saw() -> None:
    now = datetime(2026, 12, 5, 10, tzinfo=UTC)
    incident = Incident(
        id=1,
        cluster_id="c1",
        namespace="shop",
        fingerprint="f",
        object_kind="Pod",
        object_name=POD.name,
        owner_kind="Deployment",
        owner_name="cache",
        reason="OOMKilled",
        root_cause="",
        summary="",
        severity="critical",
        state="open",
        signal_count=2,
        event_count=2,
        first_seen=now,
        last_seen=now,
        affected_objects=[],
        created_at=now,
        updated_at=now,
        acknowledged_at=None,
        acknowledged_by="",
        resolved_at=None,
        resolved_by="",
        resolution_note="",
        reopen_count=0,
        report_version=0,
        version=1,
    )
    kernel = SignalRecord(
        id=2,
        cluster_id="c1",
        source="node-agent",
        kind="Pod",
        namespace="shop",
        name=POD.name,
        owner_kind="ReplicaSet",
        owner_name="cache-7d9f8",
        container="redis",
        reason="KernelOOMKill",
        message="the kernel's OOM killer killed a process (pod shop/cache-7d9f8-x2k4q container redis, node node-1): "
        "oom-kill:...task=redis-server,pid=4321",
        severity="critical",
        dedup_key="k",
        occurrence=1,
        count=1,
        first_seen="",
        last_seen="",
        resolved=False,
        received_at=now,
        incident_id=1,
    )
    finding = Finding(
        kind="Pod",
        namespace="shop",
        name=POD.name,
        reason="OOMKilled",
        root_cause="OutOfMemory",
        severity="critical",
        summary="Container redis was OOM-killed.",
        evidence=["lastState.terminated.reason=OOMKilled"],
    )
    report = build_report(incident=incident, findings=[finding], signals=[kernel], generated_at=now)
    assert report.evidence[0] == "lastState.terminated.reason=OOMKilled"
    assert report.evidence[1].startswith(
        "node agent (KernelOOMKill): the kernel's OOM killer killed a process"
    )
