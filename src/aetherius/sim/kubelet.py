"""What the kubelet, the scheduler and the controllers write: pod status changes and Events.

Messages follow the real components' formats (pkg/kubelet/events, images/puller,
kuberuntime, prober; the scheduler's FailedScheduling), because diagnosis reads those words.
Kubelet Events are core/v1 style (``source``, ``count``, first/lastTimestamp, aggregated by
the recorder: a repeat bumps ``count`` on the same object); scheduler Events are
events.k8s.io style (``eventTime``, ``series`` on repeats, no ``count``), as on real clusters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aetherius.sim.cluster import SimCluster

Obj = dict[str, Any]

BACKOFF_START, BACKOFF_CAP = 10.0, 300.0


def backoff(attempt: int) -> float:
    """The kubelet's crash/pull back-off: 10 s doubling to 5 min."""
    return float(min(BACKOFF_START * 2 ** max(attempt, 0), BACKOFF_CAP))


def _node_ip(node: str) -> str:
    digits = "".join(ch for ch in node if ch.isdigit()) or "1"
    return f"10.0.0.{int(digits) % 250 + 10}"


class Kubelet:
    """Applies lifecycle transitions to pods of a ``SimCluster``; ``clock()`` dates them."""

    def __init__(self, cluster: SimCluster, clock: Callable[[], str]) -> None:
        self.cluster = cluster
        self.clock = clock
        self._events: dict[tuple[str, ...], str] = {}
        self._pod_ips: dict[tuple[str, str], str] = {}

    # -- events ---------------------------------------------------------------------------------

    def event(
        self,
        pod: Obj,
        *,
        reason: str,
        message: str,
        type: str = "Normal",
        container: str | None = None,
        component: str = "kubelet",
    ) -> Obj:
        """Record an Event about ``pod``, aggregating repeats the way the recorder does."""
        meta, now = pod["metadata"], self.clock()
        host = (pod.get("spec") or {}).get("nodeName", "")
        scheduler = component == "default-scheduler"
        key = (meta["namespace"], meta["uid"], reason, message, type, component, container or "")
        existing = self._events.get(key)
        if existing is not None:
            current = self.cluster.find("Event", meta["namespace"], existing)
            if current is not None:
                if scheduler:
                    count = int((current.get("series") or {}).get("count", 1)) + 1
                    current["series"] = {"count": count, "lastObservedTime": _micro(now)}
                else:
                    current["count"] = int(current.get("count") or 1) + 1
                    current["lastTimestamp"] = now
                return self.cluster.update(current)
        digest = hashlib.sha256(repr((key, now, len(self._events))).encode()).hexdigest()[:16]
        name = f"{meta['name']}.{digest}"
        involved = {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": "v1",
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type,
        }
        if scheduler:
            event |= {
                "source": {},
                "eventTime": _micro(now),
                "action": "Binding" if reason == "Scheduled" else "Scheduling",
                "reportingComponent": "default-scheduler",
                "reportingInstance": "default-scheduler-control-plane",
                "firstTimestamp": None,
                "lastTimestamp": None,
            }
        else:
            event |= {
                "source": {"component": component, "host": host} if host else {"component": component},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": host,
            }
        self._events[key] = name
        return self.cluster.create(event)

    # -- pod status helpers ---------------------------------------------------------------------

    def pod(self, ref: str) -> Obj:
        namespace, _, name = ref.partition("/")
        return self.cluster.get("Pod", namespace, name)

    def _statuses(self, pod: Obj) -> list[Obj]:
        status = pod.setdefault("status", {})
        known = {s["name"]: s for s in status.get("containerStatuses") or []}
        statuses = []
        for spec in (pod.get("spec") or {}).get("containers") or []:
            statuses.append(
                known.get(spec["name"])
                or {
                    "name": spec["name"],
                    "image": spec.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                    "lastState": {},
                }
            )
        status["containerStatuses"] = statuses
        return statuses

    def _container(self, pod: Obj, name: str | None) -> Obj:
        statuses = self._statuses(pod)
        for entry in statuses:
            if name is None or entry["name"] == name:
                return entry
        raise KeyError(f"pod {pod['metadata']['name']} has no container {name!r}")

    def _conditions(self, pod: Obj) -> None:
        """Recompute phase and the Ready/ContainersReady conditions from container states."""
        status, now = pod["status"], self.clock()
        statuses = self._statuses(pod)
        all_ready = bool(statuses) and all(s.get("ready") for s in statuses)
        if any("running" in s.get("state", {}) or s.get("restartCount") for s in statuses):
            status["phase"] = "Running"
        conditions = {c["type"]: c for c in status.get("conditions") or []}

        def put(kind: str, value: bool, reason: str | None = None, message: str | None = None) -> None:
            previous = conditions.get(kind)
            text = "True" if value else "False"
            if previous is not None and previous.get("status") == text:
                return
            condition: Obj = {"type": kind, "status": text, "lastProbeTime": None, "lastTransitionTime": now}
            if reason:
                condition["reason"] = reason
            if message:
                condition["message"] = message
            conditions[kind] = condition

        if status.get("phase") == "Running" or (pod.get("spec") or {}).get("nodeName"):
            put("PodReadyToStartContainers", True)
            put("Initialized", True)
            not_ready = [s["name"] for s in statuses if not s.get("ready")]
            message = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else None
            put("Ready", all_ready, None if all_ready else "ContainersNotReady", message)
            put("ContainersReady", all_ready, None if all_ready else "ContainersNotReady", message)
        order = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
        status["conditions"] = [conditions[k] for k in order if k in conditions]

    def _save(self, pod: Obj) -> Obj:
        self._conditions(pod)
        pod["metadata"].pop("resourceVersion", None)
        return self.cluster.update(pod)

    # -- transitions ----------------------------------------------------------------------------

    def schedule(self, ref: str, node: str) -> Obj:
        pod = self.pod(ref)
        meta = pod["metadata"]
        pod["spec"]["nodeName"] = node
        status = pod.setdefault("status", {})
        status |= {"phase": "Pending", "hostIP": _node_ip(node), "hostIPs": [{"ip": _node_ip(node)}]}
        status["startTime"] = self.clock()
        status["qosClass"] = status.get("qosClass", "Burstable")
        status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != "PodScheduled"]
        status["conditions"].append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": self.clock(),
            }
        )
        self._statuses(pod)
        saved = self._save(pod)
        self.event(
            saved,
            reason="Scheduled",
            message=f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
            component="default-scheduler",
        )
        return saved

    def unschedulable(self, ref: str, message: str) -> Obj:
        pod = self.pod(ref)
        status = pod.setdefault("status", {})
        status["phase"] = "Pending"
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": self.clock(),
                "reason": "Unschedulable",
                "message": message,
            }
        ]
        pod["metadata"].pop("resourceVersion", None)
        saved = self.cluster.update(pod)
        self.event(
            saved, reason="FailedScheduling", message=message, type="Warning", component="default-scheduler"
        )
        return saved

    def _image(self, pod: Obj, container: str) -> str:
        specs = {c["name"]: c for c in pod["spec"].get("containers") or []}
        return str(specs[container].get("image", ""))

    def pulled(self, ref: str, container: str, *, cached: bool = False) -> None:
        pod = self.pod(ref)
        image = self._image(pod, container)
        if cached:
            self.event(
                pod,
                reason="Pulled",
                message=f'Container image "{image}" already present on machine',
                container=container,
            )
            return
        self.event(pod, reason="Pulling", message=f'Pulling image "{image}"', container=container)
        self.event(
            pod,
            reason="Pulled",
            message=f'Successfully pulled image "{image}" in 1.204s (1.204s including waiting). '
            "Image size: 48213776 bytes.",
            container=container,
        )

    def start(self, ref: str, container: str, *, ready: bool = True) -> Obj:
        pod = self.pod(ref)
        entry = self._container(pod, container)
        digest = hashlib.sha256(f"{ref}/{container}/{entry['restartCount']}".encode()).hexdigest()
        entry |= {
            "ready": ready,
            "started": True,
            "state": {"running": {"startedAt": self.clock()}},
            "containerID": f"containerd://{digest}",
            "imageID": f"{entry['image'].split(':')[0]}@sha256:{digest[::-1]}",
        }
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        ip = self._pod_ips.setdefault(
            key, f"10.244.{len(self._pod_ips) // 200}.{len(self._pod_ips) % 200 + 10}"
        )
        pod["status"] |= {"podIP": ip, "podIPs": [{"ip": ip}]}
        saved = self._save(pod)
        self.event(saved, reason="Created", message=f"Created container: {container}", container=container)
        self.event(saved, reason="Started", message=f"Started container {container}", container=container)
        return saved

    def crash(self, ref: str, container: str, *, reason: str, exit_code: int, backoff_seconds: float) -> Obj:
        pod = self.pod(ref)
        meta = pod["metadata"]
        entry = self._container(pod, container)
        started = (entry.get("state", {}).get("running") or {}).get("startedAt", self.clock())
        # NB: the dead instance is lastState.terminated from this moment, so its logs are what
        # `kubectl logs --previous` (and plain `kubectl logs`, while waiting) return, as the kubelet does.
        self.cluster.logs.restart(meta["namespace"], meta["name"], container)
        entry["lastState"] = {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": self.clock(),
                "containerID": entry.get("containerID", ""),
            }
        }
        pod_id = f"{meta['name']}_{meta['namespace']}({meta['uid']})"
        entry |= {
            "ready": False,
            "started": False,
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {int(backoff_seconds)}s restarting failed container={container} pod={pod_id}",
                }
            },
        }
        return self._save(pod)

    def back_off(self, ref: str, container: str) -> None:
        pod = self.pod(ref)
        meta = pod["metadata"]
        pod_id = f"{meta['name']}_{meta['namespace']}({meta['uid']})"
        self.event(
            pod,
            reason="BackOff",
            message=f"Back-off restarting failed container {container} in pod {pod_id}",
            type="Warning",
            container=container,
        )

    def restart(self, ref: str, container: str) -> Obj:
        pod = self.pod(ref)
        entry = self._container(pod, container)
        entry["restartCount"] = int(entry.get("restartCount", 0)) + 1
        self.cluster.update(self._prepared(pod))
        self.pulled(ref, container, cached=True)
        return self.start(ref, container)

    def _prepared(self, pod: Obj) -> Obj:
        self._conditions(pod)
        pod["metadata"].pop("resourceVersion", None)
        return pod

    def waiting(self, ref: str, container: str, *, reason: str, message: str) -> Obj:
        pod = self.pod(ref)
        entry = self._container(pod, container)
        entry |= {
            "ready": False,
            "started": False,
            "state": {"waiting": {"reason": reason, "message": message}},
        }
        return self._save(pod)

    def set_ready(self, ref: str, container: str, ready: bool) -> Obj:
        pod = self.pod(ref)
        self._container(pod, container)["ready"] = ready
        return self._save(pod)


def _micro(timestamp: str) -> str:
    """A MicroTime from a Time string (``…Z`` → ``….000000Z``)."""
    return timestamp[:-1] + ".000000Z" if timestamp.endswith("Z") and "." not in timestamp else timestamp
