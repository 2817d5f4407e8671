"""Findings and the fixed vocabularies of docs/diagnosis-contract.md (change only by adding)."""

from __future__ import annotations

import functools
import re
from typing import Literal

import msgspec

__all__ = [
    "CAUSE_WORDS",
    "REASONS",
    "ROOT_CAUSES",
    "SEVERITY_RANK",
    "DiagnosisResult",
    "Finding",
    "Link",
    "Owner",
    "Severity",
    "runbook_for",
    "slug",
]

REASONS: tuple[str, ...] = (
    "OOMKilled",
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "ContainerFailed",
    "InitContainerFailed",
    "FailedScheduling",
    "SchedulingGated",
    "FailedMount",
    "FailedCreatePodSandBox",
    "Unhealthy",
    "Evicted",
    "NodeNotReady",
    "NodePressure",
    "PVCPending",
    "ServiceNoEndpoints",
    "IngressMisconfigured",
    "DeploymentUnavailable",
    "StatefulSetUnavailable",
    "DaemonSetUnavailable",
    "ReplicaSetFailedCreate",
    "JobFailed",
    "CronJobInvalid",
    "HPAMisconfigured",
    "PDBBlocking",
    "NetworkPolicyNoMatch",
    "WebhookUnavailable",
    "QuotaExceeded",
    # Additions: errors repeating in the logs of a pod that is up; a reference nobody could check.
    "ErrorsInLogs",
    "UnverifiedReference",
    "IngressBackendUnavailable",
)

ROOT_CAUSES: tuple[str, ...] = (
    "OutOfMemory",
    "ApplicationError",
    "MissingConfiguration",
    "DependencyUnavailable",
    "InvalidCommand",
    "ImageNotFound",
    "RegistryAuthFailure",
    "InsufficientResources",
    "SchedulingConstraint",
    "VolumeProvisioningFailure",
    "VolumeMountFailure",
    "ProbeFailure",
    "NodeFailure",
    "SelectorMismatch",
    "MissingReference",
    "QuotaExceeded",
    "PermissionDenied",
    "Unknown",
)

# Each root cause in words, for a headline ("Out of memory: Deployment shop/api").
CAUSE_WORDS: dict[str, str] = {
    "OutOfMemory": "out of memory",
    "ApplicationError": "the application itself fails",
    "MissingConfiguration": "missing configuration",
    "DependencyUnavailable": "a dependency is unreachable",
    "InvalidCommand": "the command cannot run",
    "ImageNotFound": "the image does not exist",
    "RegistryAuthFailure": "the registry refuses the pull",
    "InsufficientResources": "not enough cluster resources",
    "SchedulingConstraint": "a scheduling rule matches no node",
    "VolumeProvisioningFailure": "the volume cannot be provisioned",
    "VolumeMountFailure": "the volume cannot be mounted",
    "ProbeFailure": "a health probe fails",
    "NodeFailure": "the node is failing",
    "SelectorMismatch": "the selector matches nothing",
    "MissingReference": "it points at something that does not exist",
    "QuotaExceeded": "a quota refuses it",
    "PermissionDenied": "permission denied",
    "Unknown": "cause not determined",
}

Severity = Literal["critical", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

# A finding whose root cause has its own, more specific runbook points there.
_RUNBOOK_BY_CAUSE = {
    ("CrashLoopBackOff", "OutOfMemory"): "oom-killed",
    ("CrashLoopBackOff", "ProbeFailure"): "unhealthy",
}


@functools.lru_cache(maxsize=256)  # a closed vocabulary; one regex pass per reason per process
def slug(reason: str) -> str:
    """``OOMKilled`` → ``oom-killed``, ``PVCPending`` → ``pvc-pending``."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", reason)
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", spaced)
    return spaced.lower()


def runbook_for(reason: str, root_cause: str) -> str:
    return _RUNBOOK_BY_CAUSE.get((reason, root_cause), slug(reason))


class Owner(msgspec.Struct, frozen=True):
    kind: str
    name: str


class Link(msgspec.Struct, frozen=True):
    """The upstream finding a finding follows from: its object and its reason."""

    kind: str
    namespace: str
    name: str
    reason: str


class Finding(msgspec.Struct, kw_only=True):
    kind: str
    namespace: str
    name: str
    reason: str
    root_cause: str
    severity: Severity
    summary: str
    evidence: list[str]
    recommendations: list[str]
    runbook: str = ""
    owner: Owner | None = None
    container: str | None = None
    # Additions to the contract: the workload this finding rolls up to ("Deployment/shop/api").
    group: str = ""
    # The finding this one follows from (None: this is a root), and each hop in words.
    caused_by: Link | None = None
    chain: list[str] = msgspec.field(default_factory=list)

    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.namespace, self.name, self.reason)

    def link(self) -> Link:
        return Link(kind=self.kind, namespace=self.namespace, name=self.name, reason=self.reason)

    def __post_init__(self) -> None:
        if not self.runbook:
            self.runbook = runbook_for(self.reason, self.root_cause)


class DiagnosisResult(msgspec.Struct, kw_only=True):
    cluster: str
    source: str  # "snapshot" | "live"
    findings: list[Finding]
    warnings: list[str] = msgspec.field(default_factory=list)
    scan_id: str = ""
    reference_time: str = ""  # the "now" ages were measured against

    def __repr__(self) -> str:
        # NB: short on purpose. ``asyncio.run`` formats its finished task (result included) when
        # it restores the SIGINT handler, so a field-by-field repr of a large cluster's findings
        # (megabytes of text) was built twice at the end of every diagnosis and thrown away.
        return (
            f"DiagnosisResult(cluster={self.cluster!r}, source={self.source!r}, scan_id={self.scan_id!r}, "
            f"findings=<{len(self.findings)}>, warnings=<{len(self.warnings)}>)"
        )

    def worst(self) -> str | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITY_RANK.__getitem__)
