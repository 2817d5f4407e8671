"""Pod analyzer: container states (regular and init), restarts, image and config errors.

Pending-phase problems (scheduling, mounts, sandboxes, stuck creation), evictions and probes are
in ``pod_pending``. A pod that succeeded, or is starting within its grace, yields nothing.
"""

from __future__ import annotations

from typing import Any

from aetherius.diagnosis.analyzers import pod_pending
from aetherius.diagnosis.analyzers._crash import Cause, crash_cause
from aetherius.diagnosis.analyzers._pod import PodView
from aetherius.diagnosis.context import RECENT_RESTART_S, Context, event_count, event_lines, secret_check
from aetherius.diagnosis.index import parse_time
from aetherius.diagnosis.model import Finding, Severity
from aetherius.diagnosis.rules.images import classify_pull
from aetherius.diagnosis.rules.kubelet import classify_create

Obj = dict[str, Any]

_CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


def _plainly_healthy(pod: Obj, ctx: Context) -> bool:
    """Running, every container ready and never restarted, no event about it: nothing to read.

    Most pods of any cluster are like this; answering for them without building a view keeps a
    scan of a large cluster close to the cost of reading it. It is judged once, while the index
    files the pod (``Index.quiet``).
    """
    return id(pod) in ctx.index.quiet


def check(pod: Obj, ctx: Context) -> list[Finding]:
    if _plainly_healthy(pod, ctx):
        return []
    view = PodView.of(pod, ctx)
    phase = view.status.get("phase")
    if phase == "Succeeded":
        return []
    if phase == "Failed":
        return _failed(view, ctx)
    scheduling = pod_pending.scheduling(view, ctx)
    if scheduling:
        return scheduling
    out = _containers(view, ctx, init=True)
    if not out:
        out = _containers(view, ctx, init=False)
    if not out:
        out = pod_pending.creating(view, ctx)
    if not out:
        out = pod_pending.probes(view, ctx)
    return out


def make(
    view: PodView,
    ctx: Context,
    *,
    reason: str,
    cause: Cause,
    severity: Severity,
    summary: str,
    container: str | None,
) -> Finding:
    return ctx.finding(
        kind="Pod",
        namespace=view.namespace,
        name=view.name,
        owner=view.owner,
        group=view.group,
        container=container,
        reason=reason,
        root_cause=cause.root_cause,
        severity=severity,
        summary=summary,
        evidence=cause.evidence,
        recommendations=cause.recommendations,
    )


def _failed(view: PodView, ctx: Context) -> list[Finding]:
    if view.status.get("reason") == "Evicted":
        return pod_pending.evicted(view, ctx)
    if view.owner is not None and view.owner.kind in ("Job", "CronJob") and not _job_failed(view, ctx):
        return []  # the Job retries or has succeeded: a failed attempt is not a problem by itself
    for cs in view.statuses("containerStatuses"):
        terminated = (cs.get("state") or {}).get("terminated")
        if isinstance(terminated, dict) and terminated.get("exitCode") not in (0, None):
            return [_terminated(view, ctx, cs, terminated)]
    return []


def _job_failed(view: PodView, ctx: Context) -> bool:
    refs = view.pod["metadata"].get("ownerReferences") or []
    job_name = next((r.get("name") for r in refs if isinstance(r, dict) and r.get("kind") == "Job"), None)
    job = ctx.index.get("Job", view.namespace, str(job_name)) if job_name else None
    if job is None:
        return True  # no Job in the state to say it recovered
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == "Failed" and c.get("status") == "True" for c in conditions
    )


def _terminated(view: PodView, ctx: Context, cs: Obj, terminated: Obj) -> Finding:
    name = cs["name"]
    cause = crash_cause(
        view, ctx, container=name, terminated=terminated, where="state.terminated", restart_count=0
    )
    if terminated.get("reason") == "OOMKilled":
        return make(
            view,
            ctx,
            reason="OOMKilled",
            cause=cause,
            severity="critical",
            container=name,
            summary=f"Container {name} was OOM-killed{_at_limit(view, name)} and will not be restarted (restartPolicy {view.spec.get('restartPolicy', 'Always')}).",
        )
    return make(
        view,
        ctx,
        reason="ContainerFailed",
        cause=cause,
        severity="critical",
        container=name,
        summary=f"Container {name} terminated with exit code {terminated.get('exitCode')} and is not restarted: it {cause.words}.",
    )


def _containers(view: PodView, ctx: Context, *, init: bool) -> list[Finding]:
    out: list[Finding] = []
    for cs in view.statuses("initContainerStatuses" if init else "containerStatuses"):
        finding = _container(view, ctx, cs, init=init)
        if finding is not None:
            out.append(finding)
            if init:
                break  # init containers run in order: the first failing one blocks the rest
    return out


def _container(view: PodView, ctx: Context, cs: Obj, *, init: bool) -> Finding | None:
    name = cs["name"]
    state = cs.get("state") or {}
    waiting = state.get("waiting") if isinstance(state.get("waiting"), dict) else None
    terminated = state.get("terminated") if isinstance(state.get("terminated"), dict) else None
    last = (cs.get("lastState") or {}).get("terminated")
    last = last if isinstance(last, dict) else None
    count = cs.get("restartCount")
    restarts = count if isinstance(count, int) else 0
    w_reason = str(waiting.get("reason") or "") if waiting else ""
    label = "init container" if init else "Container"

    if w_reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
        return _image(view, ctx, cs, waiting or {}, init=init)
    if w_reason in _CONFIG_REASONS:
        return _config(view, ctx, cs, waiting or {}, init=init)
    if w_reason == "CrashLoopBackOff" and last is not None:
        cause = crash_cause(
            view, ctx, container=name, terminated=last, where="lastState.terminated", restart_count=restarts
        )
        backoff = event_count(view.events, "BackOff")
        if backoff:
            cause.evidence.append(f"event BackOff x{backoff}")
        reason = "InitContainerFailed" if init else "CrashLoopBackOff"
        return make(
            view,
            ctx,
            reason=reason,
            cause=cause,
            severity="critical",
            container=name,
            # NB: in its first back-off a container has crashed once and not restarted yet: no "(0 restarts)"
            summary=f"{label.capitalize()} {name} {cause.words} and restarts in a loop"
            + (f" ({_count(restarts)})." if restarts else "."),
        )
    if init and terminated is not None and terminated.get("exitCode") not in (0, None):
        cause = crash_cause(
            view, ctx, container=name, terminated=terminated, where="state.terminated", restart_count=restarts
        )
        return make(
            view,
            ctx,
            reason="InitContainerFailed",
            cause=cause,
            severity="critical",
            container=name,
            summary=f"Init container {name} failed (exit code {terminated.get('exitCode')}): it {cause.words}; the pod cannot start.",
        )
    failed_now = terminated is not None and terminated.get("exitCode") not in (0, None)
    if failed_now and not init and terminated is not None and view.spec.get("restartPolicy") == "Never":
        return _terminated(view, ctx, cs, terminated)
    if last is not None and not init and _recent(ctx, last):
        if last.get("reason") == "OOMKilled":
            cause = crash_cause(
                view,
                ctx,
                container=name,
                terminated=last,
                where="lastState.terminated",
                restart_count=restarts,
            )
            return make(
                view,
                ctx,
                reason="OOMKilled",
                cause=cause,
                severity="warning",
                container=name,
                summary=f"Container {name} was OOM-killed{_at_limit(view, name)} {_ago(ctx, last)} and restarted ({_count(restarts)}).",
            )
        if restarts >= 1 and not pod_pending.liveness_failures(view):
            cause = crash_cause(
                view,
                ctx,
                container=name,
                terminated=last,
                where="lastState.terminated",
                restart_count=restarts,
            )
            # NB: between two crashes of a young crash loop the container runs again; one or two
            # restarts are a finding when the dead instance says why (its log, its status), so a
            # diagnosis landing in that window is not blind. Unexplained, it takes three.
            if restarts >= 3 or cause.root_cause != "Unknown":
                if cs.get("ready") is True and isinstance(state.get("running"), dict):
                    cause.evidence.append(
                        f"Running and Ready now, but {_count(restarts)}, the last {_ago(ctx, last)}: a loop caught "
                        f"between two restarts (restarts older than {int(RECENT_RESTART_S // 60)}m on a Ready pod are history)"
                    )
                return make(
                    view,
                    ctx,
                    reason="CrashLoopBackOff",
                    cause=cause,
                    severity="warning",
                    container=name,
                    summary=f"Container {name} {_restarting(restarts, ago=_ago(ctx, last))}: it {cause.words}.",
                )
    return None


def _count(restarts: int) -> str:
    return "1 restart" if restarts == 1 else f"{restarts} restarts"


def _at_limit(view: PodView, container: str) -> str:
    limit = view.resource(container, "limits", "memory")
    return f" at its {limit} memory limit" if limit else " (no memory limit: by the node's OOM killer)"


def _restarting(restarts: int, *, ago: str) -> str:
    if restarts >= 3:
        return f"keeps restarting ({restarts} restarts, the last {ago})"
    return f"restarted {'once' if restarts == 1 else 'twice'} after crashing (the last {ago})"


def _recent(ctx: Context, terminated: Obj) -> bool:
    age = ctx.age(terminated.get("finishedAt"))
    return age is not None and age <= RECENT_RESTART_S


def _ago(ctx: Context, terminated: Obj) -> str:
    """When it happened, as a time of day (UTC): a summary is stored and read later, and "3m ago"
    would go on saying 3 minutes in the API, the resolved incident and the knowledge base."""
    stamp = parse_time(terminated.get("finishedAt"))
    if stamp is None:
        return "recently"
    same_day = stamp.date() == ctx.now.date()
    return f"at {stamp:%H:%M} UTC" if same_day else f"at {stamp:%Y-%m-%d %H:%M} UTC"


def _image(view: PodView, ctx: Context, cs: Obj, waiting: Obj, *, init: bool) -> Finding:
    name, image = cs["name"], str(cs.get("image") or view.containers.get(cs["name"], {}).get("image") or "?")
    w_reason, message = str(waiting.get("reason")), str(waiting.get("message") or "")
    evidence = [f"state.waiting.reason={w_reason}", f"image={image}"]
    if message:
        evidence.append(f"state.waiting.message={message}")
    failed = [
        ev for ev in view.events if ev.reason in ("Failed", "ErrImagePull") and "image" in ev.message.lower()
    ]
    evidence += [ev.line() for ev in failed[:2]]
    text = " ".join([message, *(ev.message for ev in failed)])
    if w_reason == "InvalidImageName":
        root = "ImageNotFound"
        recs = [
            f"Fix the image reference {image!r} of container {name} in {view.where()}: it is not a valid name."
        ]
        return _image_finding(
            view,
            ctx,
            name,
            "InvalidImageName",
            root,
            evidence,
            recs,
            f"Image {image!r} of container {name} is not a valid image reference.",
        )
    root = ctx.classified(classify_pull, text)
    pull_secrets = [s.get("name") for s in view.spec.get("imagePullSecrets") or [] if isinstance(s, dict)]
    missing_secret = event_lines(view.events, "FailedToRetrieveImagePullSecret")
    if missing_secret or (root == "Unknown" and pull_secrets and "denied" in text.lower()):
        root = "RegistryAuthFailure"
        evidence += missing_secret
    if root == "ImageNotFound":
        recs = [
            f"Image {image} does not exist in its registry: fix the repository or tag of container {name} in {view.where()} (check `crane ls` / the registry UI for the tags that exist)."
        ]
        words = "does not exist"
    elif root == "RegistryAuthFailure":
        secrets = ", ".join(str(s) for s in pull_secrets) or "none"
        recs = [
            f"The registry refuses the pull: give {view.where()} an imagePullSecret with valid credentials for the registry of {image} (imagePullSecrets now: {secrets})."
        ]
        words = "is refused by the registry (unauthorized)"
    elif root == "DependencyUnavailable":
        recs = [
            f"The node cannot reach the registry of {image}: check DNS, proxy and egress rules from the nodes."
        ]
        words = "cannot be fetched: the registry is unreachable"
    else:
        recs = [f"Read the pull error: kubectl describe pod -n {view.namespace} {view.name}"]
        words = "cannot be pulled"
    summary = f"Image {image} of {'init container' if init else 'container'} {name} {words} ({w_reason})."
    return _image_finding(view, ctx, name, "ImagePullBackOff", root, evidence, recs, summary)


def _image_finding(
    view: PodView,
    ctx: Context,
    container: str,
    reason: str,
    root: str,
    evidence: list[str],
    recs: list[str],
    summary: str,
) -> Finding:
    return make(
        view,
        ctx,
        reason=reason,
        cause=Cause(root, "", evidence, recs),
        severity="critical",
        summary=summary,
        container=container,
    )


def _config(view: PodView, ctx: Context, cs: Obj, waiting: Obj, *, init: bool) -> Finding:
    name, w_reason = cs["name"], str(waiting.get("reason"))
    message = str(waiting.get("message") or "")
    verdict = ctx.classified(classify_create, message)
    evidence = [f"state.waiting.reason={w_reason}", f"state.waiting.message={message}"]
    evidence += event_lines(view.events, "Failed")
    if verdict.object_kind == "Secret":
        evidence.append(secret_check(ctx, view.namespace, verdict.object_name))
    recs: list[str]
    if verdict.key:
        existing = ""
        obj = ctx.index.get(verdict.object_kind, view.namespace, verdict.object_name)
        if obj is not None and verdict.object_kind == "ConfigMap":
            keys = sorted((obj.get("data") or {}).keys())
            existing = f" (keys it has: {', '.join(keys) or 'none'})"
            evidence.append(f"ConfigMap {verdict.object_name} keys: {', '.join(keys) or 'none'}")
        recs = [
            f"Add key {verdict.key} to {verdict.object_kind} {verdict.object_name}{existing}, or fix the key referenced by container {name} in {view.where()}."
        ]
        words = f"references key {verdict.key} that {verdict.object_kind} {verdict.object_name} does not have"
    elif verdict.object_name:
        recs = [
            f"Create {verdict.object_kind} {verdict.object_name} in namespace {view.namespace}, or fix the name referenced by container {name} in {view.where()}."
        ]
        words = f"references {verdict.object_kind} {verdict.object_name}, which does not exist"
    elif verdict.root_cause == "InvalidCommand":
        recs = [
            f"Fix the command/args of container {name} in {view.where()}: the executable must exist in the image."
        ]
        words = "has a command that cannot be run"
    elif verdict.root_cause == "PermissionDenied":
        recs = [
            f"The image runs as root but the pod requires runAsNonRoot: set securityContext.runAsUser in {view.where()} or use a non-root image."
        ]
        words = "is refused by its security context"
    else:
        recs = [f"Read the error: kubectl describe pod -n {view.namespace} {view.name}"]
        words = "cannot be created"
    kind = "init container" if init else "Container"
    cause = Cause(verdict.root_cause, words, evidence, recs)
    return make(
        view,
        ctx,
        reason=w_reason,
        cause=cause,
        severity="critical",
        container=name,
        summary=f"{kind.capitalize()} {name} {words} ({w_reason}).",
    )


CHECKS = {"Pod": check}
