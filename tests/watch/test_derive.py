"""Signal derivation on real-shaped Pod and Event JSON, decoded the way the watch loop does."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from prometheus_client import REGISTRY

from aetherius.config import WatcherSettings
from aetherius.signals import dedup_key
from aetherius.watch.derive import Deriver
from aetherius.watch.model import EventWatchEvent, KubeEvent, Pod

POD_DECODER = msgspec.json.Decoder(Pod)
EVENT_DECODER = msgspec.json.Decoder(KubeEvent)


def pod(
    *,
    restarts: int = 0,
    waiting: str | None = None,
    last: dict[str, Any] | None = None,
    current: dict[str, Any] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    status_reason: str = "",
    uid: str = "uid-1",
) -> Pod:
    state: dict[str, Any] = {"running": {"startedAt": "2026-01-01T00:00:05Z"}}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": f"{waiting} for app"}}
    if current:
        state = {"terminated": current}
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "checkout-5f6c9d8b7a-d061x",
            "namespace": "shop",
            "uid": uid,
            "resourceVersion": "42",
            "labels": {"app": "checkout", "pod-template-hash": "5f6c9d8b7a"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "checkout-5f6c9d8b7a",
                    "uid": "rs-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "checkout", "image": "shop/checkout:1.4"}], "nodeName": "node-1"},
        "status": {
            "phase": "Failed" if status_reason else "Running",
            "reason": status_reason,
            "message": "The node was low on resource: memory." if status_reason else "",
            "conditions": conditions or [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "checkout",
                    "ready": False,
                    "restartCount": restarts,
                    "image": "shop/checkout:1.4",
                    "imageID": "",
                    "state": state,
                    "lastState": {"terminated": last} if last else {},
                }
            ],
        },
    }
    return POD_DECODER.decode(orjson.dumps(doc))


OOM = {
    "reason": "OOMKilled",
    "exitCode": 137,
    "startedAt": "2026-01-01T00:00:05Z",
    "finishedAt": "2026-01-01T00:00:20Z",
    "containerID": "containerd://abc",
}


def test_oom_kill_is_one_signal_per_restart_with_exit_code_and_deployment_owner() -> None:
    deriver = Deriver(cluster_id="c1")
    assert deriver.from_pod(pod()) == []
    (oom,) = deriver.from_pod(pod(restarts=1, last=OOM))
    assert (oom.reason, oom.severity, oom.occurrence, oom.container) == (
        "OOMKilled",
        "critical",
        1,
        "checkout",
    )
    assert "exit code 137" in oom.message and oom.last_seen == "2026-01-01T00:00:20Z"
    assert oom.owner is not None and (oom.owner.kind, oom.owner.name) == ("Deployment", "checkout")
    assert deriver.from_pod(pod(restarts=1, last=OOM)) == []  # same state again: no transition
    (again,) = deriver.from_pod(pod(restarts=2, last=OOM))
    assert again.occurrence == 2 and again.dedup_key == oom.dedup_key


def test_current_termination_and_the_restart_after_it_are_one_occurrence() -> None:
    first = Deriver(cluster_id="c1")
    (terminated,) = first.from_pod(pod(restarts=0, current={**OOM}))
    restarted = Deriver(cluster_id="c1").from_pod(pod(restarts=1, last=OOM))
    assert [s.msg_id for s in restarted] == [terminated.msg_id]


def test_crashloop_and_image_pull_waiting_reasons() -> None:
    deriver = Deriver(cluster_id="c1")
    signals = deriver.from_pod(
        pod(
            restarts=3,
            waiting="CrashLoopBackOff",
            last={"reason": "Error", "exitCode": 1, "finishedAt": "2026-01-01T00:01:00Z"},
        )
    )
    assert sorted((s.reason, s.occurrence, s.severity) for s in signals) == [
        ("CrashLoopBackOff", 4, "critical"),
        ("Error", 3, "warning"),
    ]
    pulls = Deriver(cluster_id="c1")
    (err,) = pulls.from_pod(pod(waiting="ErrImagePull"))
    (backoff,) = pulls.from_pod(pod(waiting="ImagePullBackOff"))
    assert (err.reason, backoff.reason) == ("ErrImagePull", "ImagePullBackOff")
    (err_again,) = pulls.from_pod(pod(waiting="ErrImagePull"))  # flapping: the same msg id
    assert err_again.msg_id == err.msg_id
    (config,) = Deriver(cluster_id="c1").from_pod(pod(waiting="CreateContainerConfigError"))
    assert config.reason == "CreateContainerConfigError"


def test_clean_exit_is_not_a_failure_but_eviction_and_unschedulable_are() -> None:
    assert (
        Deriver(cluster_id="c1").from_pod(pod(restarts=1, last={"reason": "Completed", "exitCode": 0})) == []
    )
    (evicted,) = Deriver(cluster_id="c1").from_pod(pod(status_reason="Evicted"))
    assert evicted.reason == "Evicted" and "low on resource" in evicted.message
    unschedulable = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory.",
            "lastTransitionTime": "2026-01-01T00:00:01Z",
        }
    ]
    (signal,) = Deriver(cluster_id="c1").from_pod(pod(conditions=unschedulable))
    assert (signal.reason, signal.first_seen) == ("Unschedulable", "2026-01-01T00:00:01Z")
    gated = [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated", "message": "gated"}]
    assert Deriver(cluster_id="c1").from_pod(pod(conditions=gated)) == []  # info < default min_severity
    info = Deriver(cluster_id="c1", settings=WatcherSettings(min_severity="info"))
    assert [s.reason for s in info.from_pod(pod(conditions=gated))] == ["SchedulingGated"]


def event(**extra: Any) -> KubeEvent:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": "checkout-5f6c9d8b7a-d061x.17a8c3f0b2",
            "namespace": "shop",
            "uid": "ev-1",
            "resourceVersion": "77",
        },
        "involvedObject": {
            "kind": "Pod",
            "namespace": "shop",
            "name": "checkout-5f6c9d8b7a-d061x",
            "uid": "uid-1",
            "fieldPath": "spec.containers{checkout}",
        },
        "reason": "BackOff",
        "message": "Back-off restarting failed container checkout in pod checkout-5f6c9d8b7a-d061x_shop(uid-1)",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:05:00Z",
        "count": 5,
        "type": "Warning",
    }
    doc.update(extra)
    return EVENT_DECODER.decode(orjson.dumps(doc))


def test_event_count_is_the_occurrence_and_owner_comes_from_pod_memory() -> None:
    deriver = Deriver(cluster_id="c1")
    deriver.from_pod(pod())
    signal = deriver.from_event(event())
    assert signal is not None
    assert (signal.reason, signal.occurrence, signal.container, signal.severity) == (
        "BackOff",
        5,
        "checkout",
        "warning",
    )
    assert signal.owner is not None and signal.owner.name == "checkout"
    repeat = deriver.from_event(event(count=6))
    assert repeat is not None and repeat.dedup_key == signal.dedup_key and repeat.occurrence == 6
    assert deriver.from_event(event(), watch_type="DELETED") is None


def test_event_dedup_key_is_the_documented_digest_and_stable_across_versions() -> None:
    signal = Deriver(cluster_id="c1").from_event(event())
    assert signal is not None
    assert signal.dedup_key == dedup_key("c1", "event", "shop", "ev-1")
    # NB: the ids already in JetStream's dedup window and the Watcher's KV come from this digest
    assert signal.msg_id == "41aaf98e6c40f624334ebbf4:5"
    unnamed = Deriver(cluster_id="c1").from_event(event(metadata={"name": "e1", "namespace": "shop"}))
    assert unnamed is not None and unnamed.dedup_key == dedup_key("c1", "event", "shop", "e1")


def test_a_chunk_of_changes_gives_the_signals_of_each_in_order_and_counts_them() -> None:
    before = _derived("event", "Pulled")
    deriver = Deriver(
        cluster_id="c1", settings=WatcherSettings(event_types=["Normal", "Warning"], min_severity="info")
    )
    changes = [
        EventWatchEvent("ADDED", event(count=1)),
        EventWatchEvent("DELETED", event(count=2)),
        EventWatchEvent("MODIFIED", event(count=3, type="Normal", reason="Pulled")),
        EventWatchEvent("MODIFIED", event(count=4, type="Normal", reason="Pulled")),
    ]
    signals = deriver.from_events(changes)
    assert [(s.reason, s.occurrence) for s in signals] == [("BackOff", 1), ("Pulled", 3), ("Pulled", 4)]
    assert signals == [
        deriver.from_event(c.object, watch_type=c.type) for c in changes if c.type != "DELETED"
    ]
    assert _derived("event", "Pulled") == before + 4  # two from the chunk, two from from_event


def _derived(source: str, reason: str) -> float:
    value = REGISTRY.get_sample_value("aetherius_signals_derived_total", {"source": source, "reason": reason})
    return value or 0.0


def test_events_k8s_io_style_series_count() -> None:
    scheduler = event(
        count=None,
        firstTimestamp=None,
        lastTimestamp=None,
        reason="FailedScheduling",
        eventTime="2026-01-01T00:00:00.000000Z",
        series={"count": 9, "lastObservedTime": "2026-01-01T00:09:00.000000Z"},
    )
    signal = Deriver(cluster_id="c1").from_event(scheduler)
    assert signal is not None and signal.occurrence == 9
    assert signal.last_seen == "2026-01-01T00:09:00.000000Z"


def test_filters_apply_to_signals_and_are_counted() -> None:
    normal = event(type="Normal", reason="Pulled", message="already present")
    deriver = Deriver(cluster_id="c1")
    assert deriver.from_event(normal) is None
    keep_oom = Deriver(cluster_id="c1", settings=WatcherSettings(reason_filters=["OOMKilled"]))
    assert keep_oom.from_event(event()) is None
    assert [s.reason for s in keep_oom.from_pod(pod(restarts=1, last=OOM))] == ["OOMKilled"]
    assert deriver.filter.filtered == 1 and keep_oom.filter.filtered == 1
    both = Deriver(
        cluster_id="c1", settings=WatcherSettings(event_types=["Normal", "Warning"], min_severity="info")
    )
    assert both.from_event(normal) is not None


def test_relist_forgets_pods_that_vanished() -> None:
    deriver = Deriver(cluster_id="c1")
    deriver.from_pod(pod(uid="a"))
    deriver.from_pod(pod(uid="b"))
    deriver.begin_relist(None)
    deriver.from_pod(pod(uid="b"))
    deriver.end_relist(None)
    assert deriver.pods_remembered == 1


def test_an_event_about_an_impossible_object_becomes_no_signal() -> None:
    """involvedObject is free text for anyone who may create Events: it must not name a read."""
    from aetherius.names import REJECTED_NAMES

    before = REJECTED_NAMES.labels(entry="watcher")._value.get()
    deriver = Deriver(cluster_id="c1")
    hostile = [
        {"kind": "Pod", "namespace": "shop", "name": "../secrets/db-password"},
        {"kind": "Pod", "namespace": "shop", "name": "api?watch=true"},
        {"kind": "Pod", "namespace": "../kube-system", "name": "api"},
        {"kind": "Pod/../Secret", "namespace": "shop", "name": "api"},
        {"kind": "Service", "namespace": "shop", "name": "1-starts-with-a-digit"},
        {"kind": "Pod", "namespace": "shop", "name": "a" * 254},
    ]
    for involved in hostile:
        assert deriver.from_event(event(involvedObject=involved)) is None, involved
    assert REJECTED_NAMES.labels(entry="watcher")._value.get() - before == len(hostile)
    long_reason = deriver.from_event(event(reason="R" * 4000))
    assert long_reason is not None and len(long_reason.reason) == 128
