"""Which container logs to read, and reading them through the gateway.

Logs are read only for containers that crashed and whose status does not already name the cause
(an OOMKilled termination is the whole answer; its log is never read), one representative pod per
(owner, container):
a Deployment's twenty crashing replicas fail for one reason, so one log answers for all of them
(the finding says which pod's log it quotes). The previous instance is read first — it is the one
that died. The number of reads is bounded, so a scan of a large broken cluster stays fast.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aetherius.diagnosis.context import RECENT_RESTART_S, Context, LogText
from aetherius.diagnosis.index import as_list, group_of
from aetherius.gateway import BackendError, ExecutionGateway

__all__ = ["MAX_LOG_GROUPS", "read_logs"]

MAX_LOG_GROUPS = 200
_CANDIDATES = 3
_PARALLEL = 8
Obj = dict[str, Any]


def _needs(cs: Obj, ctx: Context) -> bool | None:
    """None: no log needed; True: read the previous instance; False: the current one."""
    state = cs.get("state") or {}
    if cs.get("restartCount") == 0 and isinstance(state, dict) and "running" in state:
        return None  # running and never restarted: no instance has died (most containers)
    waiting = state.get("waiting") if isinstance(state, dict) else None
    terminated = state.get("terminated") if isinstance(state, dict) else None
    last = (cs.get("lastState") or {}).get("terminated") if isinstance(cs.get("lastState"), dict) else None
    if isinstance(last, dict) and last.get("reason") == "OOMKilled":
        return None  # the status is the evidence: the analyzer never consults this log
    if isinstance(waiting, dict) and waiting.get("reason") == "CrashLoopBackOff":
        return True
    if isinstance(terminated, dict) and terminated.get("exitCode") not in (0, None):
        return False
    if isinstance(last, dict) and last.get("reason") != "OOMKilled":
        age = ctx.age(last.get("finishedAt"))
        restarts = cs.get("restartCount")
        # NB: a recent crash is read at any restart count: between two crashes of a crash loop the
        # container runs again, and its previous instance is the only place the cause is written.
        if age is not None and age <= RECENT_RESTART_S and isinstance(restarts, int) and restarts >= 1:
            return True
    return None


def plan(ctx: Context) -> dict[tuple[str, str], list[tuple[str, str, bool]]]:
    """(group, container) → candidate (namespace, pod, previous) reads, in name order."""
    groups: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}
    plain = ctx.index.plain  # running, ready, never restarted: no instance has died
    for pod in ctx.index.pods:
        if not isinstance(pod, dict) or id(pod) in plain:
            continue
        status = pod.get("status")
        if not isinstance(status, dict) or status.get("phase") == "Succeeded":
            continue
        statuses = [*as_list(status.get("initContainerStatuses")), *as_list(status.get("containerStatuses"))]
        wanted = []
        for cs in statuses:
            if isinstance(cs, dict) and isinstance(cs.get("name"), str):
                previous = _needs(cs, ctx)
                if previous is not None:
                    wanted.append((cs["name"], previous))
        if not wanted:
            continue
        metadata = pod["metadata"]
        namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
        try:
            owner, _ = ctx.index.owner_of(pod)
        except (TypeError, ValueError, AttributeError):
            owner = None
        group = group_of(owner, "Pod", namespace, name)
        for container, previous in wanted:
            groups.setdefault((group, container), []).append((namespace, name, previous))
    for candidates in groups.values():
        candidates.sort()
    return groups


async def read_logs(
    gateway: ExecutionGateway, ctx: Context, *, requester: str, max_groups: int = MAX_LOG_GROUPS
) -> None:
    planned = sorted(plan(ctx).items())
    if len(planned) > max_groups:
        ctx.warnings.append(f"logs read for {max_groups} of {len(planned)} failing container groups (budget)")
        planned = planned[:max_groups]
    semaphore = asyncio.Semaphore(_PARALLEL)

    async def one(key: tuple[str, str], candidates: list[tuple[str, str, bool]]) -> None:
        group, container = key
        async with semaphore:
            for namespace, pod, previous in candidates[:_CANDIDATES]:
                try:
                    text = await gateway.pod_logs(
                        requester=requester,
                        namespace=namespace,
                        name=pod,
                        container=container,
                        previous=previous,
                    )
                except BackendError as exc:
                    ctx.warnings.append(f"logs of {namespace}/{pod}/{container} not read: {exc}")
                    return
                if text and text.strip():
                    log = LogText(text=text, pod=pod, previous=previous)
                    ctx.logs[(namespace, pod, container)] = log
                    ctx.group_logs[(group, container)] = log
                    return

    await asyncio.gather(*(one(key, candidates) for key, candidates in planned))
    # Logs a snapshot carries of containers that did not crash (errors a Ready pod keeps logging)
    # cost no request: read them too, bounded like the rest.
    held = [key for key in gateway.held_logs() if key not in ctx.logs][:max_groups]
    for namespace, pod, container in held:
        try:
            text = await gateway.pod_logs(
                requester=requester, namespace=namespace, name=pod, container=container, previous=False
            )
        except BackendError:
            continue
        if text and text.strip():
            ctx.running_logs[(namespace, pod, container)] = LogText(text=text, pod=pod, previous=False)
