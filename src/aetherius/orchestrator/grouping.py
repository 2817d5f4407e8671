"""Incident grouping: which Signals are the same failure of the same workload.

A Deployment whose three pods crash is one problem, and a crash loop reported as ``OOMKilled``
(pod status), ``CrashLoopBackOff`` (pod status) and ``BackOff`` (kubelet Event) is one failure
seen three ways. So an incident's fingerprint is made of the cluster, the owning workload (or the
object itself when nothing owns it) and a coarse *failure class* derived from the Signal's reason
— never of the pod name or the exact reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aetherius.signals import ObjectRef, Signal, dedup_key

# Reasons whose class does not depend on the message.
_CLASS_BY_REASON: dict[str, str] = {
    "OOMKilled": "crash",
    "CrashLoopBackOff": "crash",
    "Error": "crash",
    "ContainerFailed": "crash",
    "RunContainerError": "crash",
    "CreateContainerError": "crash",
    "StartError": "crash",
    "ContainerCannotRun": "crash",
    "InitContainerFailed": "crash",
    "ErrImagePull": "image",
    "ImagePullBackOff": "image",
    "InvalidImageName": "image",
    "ErrImageNeverPull": "image",
    "FailedScheduling": "scheduling",
    "Unschedulable": "scheduling",
    "SchedulingGated": "scheduling",
    "CreateContainerConfigError": "config",
    "Unhealthy": "probe",
    "ProbeWarning": "probe",
    "FailedMount": "mount",
    "FailedAttachVolume": "mount",
    "FailedMapVolume": "mount",
    "FailedCreatePodSandBox": "sandbox",
    "Evicted": "eviction",
    "Preempted": "eviction",
    "NodeNotReady": "node",
    "NodePressure": "node",
    "FailedCreate": "workload",
    "ProgressDeadlineExceeded": "workload",
    "BackoffLimitExceeded": "job",
    "DeadlineExceeded": "job",
    "JobFailed": "job",
    "ProvisioningFailed": "volume",
    "PVCPending": "volume",
    "ExceededQuota": "quota",
    "QuotaExceeded": "quota",
    # The node agent's: a kernel OOM kill is the pod's crash; what the kernel says of the node
    # joins the node's incident (with its pressure, and the evictions its chain links to it).
    "KernelOOMKill": "crash",
    "KernelHungTask": "node",
    "FilesystemReadOnly": "node",
    "KernelIOError": "node",
    "FilesystemError": "node",
    "ConntrackTableFull": "node",
    "RuntimeRestarted": "node",
    "VolumeFull": "volume",
    "CPUThrottled": "cpu",
}

# The kubelet's generic reasons: the message says which failure they belong to.
_IMAGE_MESSAGE = re.compile(r"image|ErrImagePull|ImagePullBackOff|InvalidImageName", re.IGNORECASE)
_CONFIG_MESSAGE = re.compile(
    r"configmap|secret .* not found|couldn't find key|CreateContainerConfigError", re.IGNORECASE
)
_RESTART_MESSAGE = re.compile(r"restarting failed container|back-off restarting", re.IGNORECASE)


def failure_class(reason: str, message: str = "") -> str:
    """The coarse failure a reason belongs to: ``crash``, ``image``, ``scheduling``, ``config``…

    ``BackOff`` and ``Failed`` are the kubelet's Event reasons for both crash loops and image
    pulls ("Back-off restarting failed container" vs. "Back-off pulling image"), so their message
    decides. An unknown reason is its own class, so it never merges with a different failure.
    """
    known = _CLASS_BY_REASON.get(reason)
    if known is not None:
        return known
    if reason in ("BackOff", "Failed"):
        if _RESTART_MESSAGE.search(message):
            return "crash"
        if _IMAGE_MESSAGE.search(message):
            return "image"
        if _CONFIG_MESSAGE.search(message):
            return "config"
        return "crash" if reason == "BackOff" else "failed"
    return reason.lower() or "unknown"


# Kubernetes' pod-template-hash alphabet (``rand.SafeEncodeString``): no vowels, no 0/1/3.
_TEMPLATE_HASH = re.compile(r"^(?P<base>.+)-(?P<hash>[bcdfghjklmnpqrstvwxz2456789]{5,10})$")
_CRONJOB_JOB = re.compile(r"^(?P<base>.+)-(?P<minutes>\d{8,})$")


def workload_of(signal: Signal) -> ObjectRef:
    """The object an incident is about: the owning workload when there is one.

    A pod owned by ReplicaSet ``<deploy>-<pod-template-hash>`` belongs to Deployment ``<deploy>``
    (the RS changes with every rollout, the problem usually does not); a Job named
    ``<cronjob>-<scheduled minutes>`` belongs to its CronJob.
    """
    owner = signal.owner
    namespace = signal.object.namespace
    if owner is None:
        return ObjectRef(kind=signal.object.kind, namespace=namespace, name=signal.object.name)
    owner_ns = owner.namespace or namespace
    if owner.kind == "ReplicaSet":
        template_hash = signal.labels.get("pod-template-hash", "")
        if template_hash and owner.name.endswith(f"-{template_hash}"):
            return ObjectRef(
                kind="Deployment", namespace=owner_ns, name=owner.name[: -len(template_hash) - 1]
            )
        match = _TEMPLATE_HASH.match(owner.name)
        if match is not None and not template_hash:
            return ObjectRef(kind="Deployment", namespace=owner_ns, name=match.group("base"))
    if owner.kind == "Job":
        match = _CRONJOB_JOB.match(owner.name)
        if match is not None:
            return ObjectRef(kind="CronJob", namespace=owner_ns, name=match.group("base"))
    return ObjectRef(kind=owner.kind, namespace=owner_ns, name=owner.name)


@dataclass(frozen=True, slots=True)
class IncidentKey:
    """Where a Signal belongs: one open incident per fingerprint."""

    cluster_id: str
    workload: ObjectRef
    failure_class: str

    @property
    def fingerprint(self) -> str:
        w = self.workload
        return dedup_key(self.cluster_id, w.kind, w.namespace, w.name, self.failure_class)


def incident_key(signal: Signal) -> IncidentKey:
    return IncidentKey(
        cluster_id=signal.cluster_id,
        workload=workload_of(signal),
        failure_class=failure_class(signal.reason, signal.message),
    )
