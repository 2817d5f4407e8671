"""Errors that show only in the logs of a pod that is up: requests forbidden by RBAC, names that do
not resolve, timeouts on every call. Nothing restarts, so no status or event says it; the log does.

A finding needs repetition (``MIN_REPEATS`` lines saying it): one timeout is weather, the same
failure again and again is a pod not doing its work.
"""

from __future__ import annotations

from typing import Any

from aetherius.diagnosis.analyzers._pod import PodView
from aetherius.diagnosis.context import Context
from aetherius.diagnosis.model import Finding
from aetherius.diagnosis.rules.logs import classify_logs, key_fact

__all__ = ["MIN_REPEATS", "errors_in_logs"]

Obj = dict[str, Any]
MIN_REPEATS = 3
# Causes a running program logs and survives; an application error in a live log is too common to
# be a finding on its own.
_CAUSES = ("PermissionDenied", "DependencyUnavailable", "MissingConfiguration")
_WORDS = {
    "PermissionDenied": "is refused by an API it calls (forbidden)",
    "DependencyUnavailable": "cannot reach a service it depends on",
    "MissingConfiguration": "fails on its configuration",
}


def errors_in_logs(ctx: Context, reported: set[tuple[str, str]]) -> list[Finding]:
    """One finding per container whose current log repeats a failure, for pods not yet reported."""
    out: list[Finding] = []
    for (namespace, name, container), log in sorted(ctx.running_logs.items()):
        if (namespace, name) in reported:
            continue
        pod = ctx.index.get("Pod", namespace, name)
        if pod is None:
            continue
        verdict = ctx.classified(classify_logs, log.text)
        if verdict is None or verdict.root_cause not in _CAUSES or verdict.count < MIN_REPEATS:
            continue
        view = PodView.of(pod, ctx)
        words = key_fact(verdict) or _WORDS[verdict.root_cause]
        ready = view.condition("Ready")
        state = "running and Ready" if ready is not None and ready.get("status") == "True" else "running"
        out.append(
            ctx.finding(
                kind="Pod",
                namespace=namespace,
                name=name,
                owner=view.owner,
                group=view.group,
                container=container,
                reason="ErrorsInLogs",
                root_cause=verdict.root_cause,
                severity="warning",
                summary=f"Container {container} is {state}, but it {words}: its log says so "
                f"{verdict.count} times in {verdict.total} lines.",
                evidence=[
                    f"status.phase={view.status.get('phase')}, Ready={(ready or {}).get('status', '?')}",
                    f"{verdict.count} of the last {verdict.total} log lines say it",
                    *(f"log (current instance): {line}" for line in verdict.lines),
                ],
                recommendations=_recs(verdict.root_cause, view, container),
            )
        )
    return out


def _recs(root_cause: str, view: PodView, container: str) -> list[str]:
    if root_cause == "PermissionDenied":
        return [
            f"Grant the ServiceAccount of {view.where()} ({view.spec.get('serviceAccountName') or 'default'}) "
            "the verb and resource the log names (Role/RoleBinding), or stop the call."
        ]
    if root_cause == "DependencyUnavailable":
        return [
            f"Make the host the log names reachable from {view.where()}: its Service's name and namespace "
            "(svc.namespace), its ready endpoints, NetworkPolicies on the way."
        ]
    return [f"Fix the configuration container {container} of {view.where()} complains about in its log."]
