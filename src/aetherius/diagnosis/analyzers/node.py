"""Node analyzer: NotReady (or Unknown: the kubelet stopped reporting) and the pressure conditions.
Other condition types (those node-problem-detector adds) are not findings by themselves."""

from __future__ import annotations

from typing import Any

from aetherius.diagnosis.analyzers._common import conditions
from aetherius.diagnosis.context import Context
from aetherius.diagnosis.index import meta, section
from aetherius.diagnosis.model import Finding

Obj = dict[str, Any]
_PRESSURE = {"MemoryPressure": "memory", "DiskPressure": "disk", "PIDPressure": "process IDs"}


def node(obj: Obj, ctx: Context) -> list[Finding]:
    metadata = meta(obj)
    section(obj, "status")
    name = str(metadata["name"])
    conds = conditions(obj)
    pods = len(ctx.index.pods_by_node.get(name, []))
    out = []
    ready = conds.get("Ready")
    if ready is not None and ready.get("status") != "True":
        since = ctx.age(ready.get("lastTransitionTime"))
        out.append(
            ctx.finding(
                kind="Node",
                namespace="",
                name=name,
                reason="NodeNotReady",
                root_cause="NodeFailure",
                severity="critical",
                summary=f"Node {name} is NotReady{f' for {int(since // 60)}m' if since else ''}: {ready.get('message') or ready.get('reason')}.",
                evidence=[
                    f"status.conditions[Ready]={ready.get('status')} reason={ready.get('reason')}: {ready.get('message', '')}",
                    f"{pods} pod(s) scheduled on it",
                ],
                recommendations=[
                    f"Check the kubelet and container runtime on {name} (systemctl status kubelet containerd; journalctl -u kubelet), its network to the API server, and the cloud instance state; drain and replace it if it does not recover."
                ],
            )
        )
    pressures = [(t, c) for t, c in conds.items() if t in _PRESSURE and c.get("status") == "True"]
    if pressures:
        what = ", ".join(_PRESSURE[t] for t, _ in pressures)
        out.append(
            ctx.finding(
                kind="Node",
                namespace="",
                name=name,
                reason="NodePressure",
                root_cause="NodeFailure",
                severity="warning",
                summary=f"Node {name} is under {what} pressure: the kubelet evicts pods and refuses new ones.",
                evidence=[
                    *(f"status.conditions[{t}]=True: {c.get('message', '')}" for t, c in pressures),
                    *(
                        [
                            f"Ready=True contradicts {', '.join(t for t, _ in pressures)}=True: the worse one counts"
                        ]
                        if ready is not None and ready.get("status") == "True"
                        else []
                    ),
                ],
                recommendations=[
                    f"Free {what} on {name} (remove unused images and logs, find the pods without limits) or move workloads; set requests/limits so the scheduler does not overcommit it."
                ],
            )
        )
    return out


CHECKS = {"Node": node}
