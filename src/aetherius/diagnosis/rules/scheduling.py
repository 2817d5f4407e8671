"""Scheduler messages → root cause.

``0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient memory.
preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.`` The part
before ``preemption:`` says why each group of nodes was rejected; the largest group wins, and
resources win a tie (more capacity fixes them; a constraint needs a spec change).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["SchedulingVerdict", "classify_scheduling"]

_PART = re.compile(r"^\s*(\d+)\s+(.*?)\s*$")
_INSUFFICIENT = re.compile(r"Insufficient ([\w./-]+)|Too many pods", re.I)
_CONSTRAINT = re.compile(
    r"node affinity|node selector|nodeSelector|untolerated taint|didn't tolerate|topology spread|"
    r"anti-affinity|pod affinity|volume node affinity conflict|node\(s\) were unschedulable|"
    r"didn't have free ports|didn't match Pod's node",
    re.I,
)
_VOLUME = re.compile(r"unbound immediate PersistentVolumeClaims|unbound PersistentVolumeClaims", re.I)
_MISSING = re.compile(r'persistentvolumeclaim "[^"]+" not found|not found', re.I)


@dataclass(slots=True)
class SchedulingVerdict:
    root_cause: str
    resources: list[str] = field(default_factory=list)  # cpu, memory, nvidia.com/gpu, pods
    constraints: list[str] = field(default_factory=list)


def classify_scheduling(message: str) -> SchedulingVerdict:
    head = message.split("preemption:")[0]
    reasons = head.split(":", 1)[1] if ":" in head else head
    weights = {"InsufficientResources": 0, "SchedulingConstraint": 0, "VolumeProvisioningFailure": 0}
    verdict = SchedulingVerdict(root_cause="Unknown")
    for part in reasons.rstrip(". ").split(", "):
        match = _PART.match(part)
        count, text = (int(match.group(1)), match.group(2)) if match else (1, part.strip())
        insufficient = _INSUFFICIENT.search(text)
        if insufficient:
            weights["InsufficientResources"] += count
            verdict.resources.append(insufficient.group(1) or "pods")
        elif _VOLUME.search(text):
            weights["VolumeProvisioningFailure"] += count
        elif _CONSTRAINT.search(text):
            weights["SchedulingConstraint"] += count
            verdict.constraints.append(text)
    if _VOLUME.search(message) and not any(weights.values()):
        weights["VolumeProvisioningFailure"] = 1
    best = max(weights.values())
    if best == 0:
        verdict.root_cause = "MissingReference" if _MISSING.search(message) else "Unknown"
    else:
        order = ("InsufficientResources", "VolumeProvisioningFailure", "SchedulingConstraint")
        verdict.root_cause = next(cause for cause in order if weights[cause] == best)
    return verdict
