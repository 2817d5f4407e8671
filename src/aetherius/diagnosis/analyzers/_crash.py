"""Why a container terminated: status first (OOMKilled, StartError), then probe kills from events,
then its logs (the previous instance first), then the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aetherius.diagnosis.analyzers._pod import PodView
from aetherius.diagnosis.context import Context, event_count, format_quantity, parse_quantity
from aetherius.diagnosis.rules.kubelet import classify_create
from aetherius.diagnosis.rules.logs import classify_logs, key_fact, tail

Obj = dict[str, Any]

# NB: each reads after "Container app …" and after "… it …" (the summaries put it both ways).
_EXIT_MEANING = {
    126: "has a command that is not executable",
    127: "has a command that is not found",
    137: "is killed by SIGKILL",
    139: "crashes with a segmentation fault",
    143: "is terminated by SIGTERM",
}
_ERRORISH = ("error", "fatal", "exception", "fail", "panic")


@dataclass
class Cause:
    root_cause: str
    words: str  # the cause in words, for the summary
    evidence: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)


def memory_advice(view: PodView, container: str) -> tuple[list[str], list[str]]:
    limit = view.resource(container, "limits", "memory")
    request = view.resource(container, "requests", "memory")
    evidence = [f"limits.memory={limit}" if limit else "no memory limit (killed by the node's OOM killer)"]
    if request:
        evidence.append(f"requests.memory={request}")
    amount = parse_quantity(limit)
    if amount:
        target = format_quantity(amount * 1.5, memory=True)
        rec = (
            f"Raise resources.limits.memory of container {container} in {view.where()} above {limit} "
            f"(e.g. {target}) if the working set is legitimate, or find the leak: compare usage over time."
        )
    else:
        rec = f"Set resources.requests.memory on container {container} to its real usage so the node is not overcommitted."
    return evidence, [rec]


def crash_cause(
    view: PodView, ctx: Context, *, container: str, terminated: Obj, where: str, restart_count: int
) -> Cause:
    reason = str(terminated.get("reason") or "")
    exit_code = terminated.get("exitCode")
    message = str(terminated.get("message") or "")
    status_line = f"{where}.reason={reason or '?'} exitCode={exit_code}"
    evidence = [status_line]
    if restart_count:
        evidence.append(f"restartCount={restart_count}")
    if reason == "OOMKilled":
        extra, recs = memory_advice(view, container)
        limit = view.resource(container, "limits", "memory")
        words = (
            f"is killed for exceeding its {limit} memory limit"
            if limit
            else "is killed by the out-of-memory killer"
        )
        return Cause("OutOfMemory", words, evidence + extra, recs)
    if reason in ("StartError", "ContainerCannotRun") or exit_code in (126, 127, 128):
        verdict = ctx.classified(classify_create, message) if message else None
        if (verdict is not None and verdict.root_cause != "Unknown") or exit_code in (126, 127):
            if message:
                evidence.append(f"{where}.message={message}")
            command = view.containers.get(container, {}).get("command")
            root = verdict.root_cause if verdict and verdict.root_cause != "Unknown" else "InvalidCommand"
            return Cause(
                root,
                _EXIT_MEANING.get(exit_code, "")
                if exit_code in (126, 127)
                else _WORDS.get(root, "cannot be started"),
                evidence,
                [
                    f"Fix the command/args of container {container} in {view.where()}"
                    + (f" (now {command})" if command else "")
                    + ": the executable must exist in the image and be executable."
                ],
            )
    liveness = event_count(view.events, "Unhealthy", "Liveness probe failed") + event_count(
        view.events, "Killing", "failed liveness probe"
    )
    if liveness and exit_code in (137, 143, 2, 1):
        probe = view.containers.get(container, {}).get("livenessProbe") or {}
        evidence.append(f"liveness probe failures x{liveness}")
        evidence += [ev.line() for ev in view.events if ev.reason == "Unhealthy"][:1]
        return Cause(
            "ProbeFailure",
            "is killed by its liveness probe, not by memory",
            evidence,
            [
                f"Check the liveness probe of {container} ({_probe_text(probe)}): the right port/path, a "
                "startupProbe or a larger initialDelaySeconds/timeoutSeconds if the app is slow to answer."
            ],
        )
    log = ctx.log_for(view.namespace, view.name, container, view.group)
    texts = [(message, f"{where}.message")] if message else []
    if log is not None:
        texts.append((log.text, log.label(view.name)))
    for text, label in texts:
        # A group's pods share one log (see logplan): classify each text once per scan.
        found = ctx.classified(classify_logs, text)
        if found is not None:
            evidence += [f"{label}: {line}" for line in found.lines]
            words = key_fact(found) or _WORDS[found.root_cause]
            return Cause(
                found.root_cause, words, evidence, _recs(found.root_cause, view, container, found.label)
            )
    if log is not None and log.text.strip():
        lines = tail(log.text)
        evidence += [f"{log.label(view.name)}: {line}" for line in lines]
        if exit_code == 139 or any(word in line.lower() for line in lines for word in _ERRORISH):
            return Cause(
                "ApplicationError",
                _WORDS["ApplicationError"],
                evidence,
                _recs("ApplicationError", view, container),
            )
    if exit_code == 139:
        return Cause(
            "ApplicationError",
            "crashes with a segmentation fault",
            evidence,
            _recs("ApplicationError", view, container),
        )
    meaning = _EXIT_MEANING.get(
        exit_code if isinstance(exit_code, int) else -1, f"exits with code {exit_code}"
    )
    evidence.append(
        "no log line explains the exit"
        if log is not None
        else "no logs of the crashed instance were available"
    )
    return Cause(
        "Unknown",
        meaning,
        evidence,
        [
            f"Read the logs of the crashed instance: kubectl logs -n {view.namespace} {view.name} -c {container} --previous"
        ],
    )


_WORDS = {
    "OutOfMemory": "runs out of memory",
    "InvalidCommand": "cannot run its command",
    "PermissionDenied": "is refused by an API it calls (forbidden)",
    "MissingConfiguration": "is missing configuration it needs",
    "DependencyUnavailable": "cannot reach a service it depends on",
    "ApplicationError": "fails with an error in the application",
}


def _recs(root_cause: str, view: PodView, container: str, label: str = "") -> list[str]:
    # NB: only the one asked for is formatted (once per crashing pod).
    where = view.where()
    if label == "runs as root":
        return [
            f"Run container {container} of {where} as a non-root user: set securityContext.runAsUser "
            "(and runAsNonRoot: true) to the user the image expects."
        ]
    if label == "TLS certificate":
        return [
            f"Renew or fix the certificate the log names (check its dates: openssl s_client -connect HOST:PORT | "
            f"openssl x509 -noout -dates), or give container {container} of {where} the right CA bundle."
        ]
    if root_cause == "OutOfMemory":
        return [
            f"The program reports running out of memory: raise its heap/limit in {where} or fix the leak."
        ]
    if root_cause == "InvalidCommand":
        return [f"Fix the command/args of container {container} in {where}."]
    if root_cause == "PermissionDenied":
        return [
            f"Grant the ServiceAccount of {where} the permission the log names (Role/RoleBinding), "
            "or fix the cloud IAM policy it uses."
        ]
    if root_cause == "MissingConfiguration":
        return [
            f"Provide the configuration the log names to container {container} in {where} "
            "(env var, ConfigMap/Secret key, mounted file)."
        ]
    if root_cause == "DependencyUnavailable":
        return [
            f"Make the dependency named in the log reachable from {where}: check that its Service has ready "
            "endpoints, the host name and port are right, and no NetworkPolicy blocks it."
        ]
    if root_cause == "ApplicationError":
        return [
            f"Fix the error the log shows in container {container} of {where}; roll back if a new version introduced it."
        ]
    raise KeyError(root_cause)


def _probe_text(probe: Any) -> str:
    if not isinstance(probe, dict) or not probe:
        return "no probe spec"
    http = probe.get("httpGet")
    if isinstance(http, dict):
        text = f"httpGet {http.get('path', '/')} port {http.get('port')}"
    elif isinstance(probe.get("tcpSocket"), dict):
        text = f"tcpSocket port {probe['tcpSocket'].get('port')}"
    elif isinstance(probe.get("exec"), dict):
        text = f"exec {probe['exec'].get('command')}"
    else:
        text = "probe"
    return f"{text}, timeoutSeconds={probe.get('timeoutSeconds', 1)}, periodSeconds={probe.get('periodSeconds', 10)}"


probe_text = _probe_text
