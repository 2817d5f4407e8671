"""Job and CronJob analyzers. A Job that failed is a finding (its cause from its pods' logs); a
pod that failed while its Job retried and then succeeded is not."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from cronsim import CronSim, CronSimError

from aetherius.diagnosis.analyzers._common import cause_clause, conditions, pod_cause, recs_from
from aetherius.diagnosis.context import Context
from aetherius.diagnosis.index import meta, section
from aetherius.diagnosis.model import Finding
from aetherius.diagnosis.rules.admission import classify_admission

Obj = dict[str, Any]

_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_NAMES = re.compile(r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat", re.I)
_GO_DURATION = re.compile(
    r"(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))*"
)
_ANY_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def job(obj: Obj, ctx: Context) -> list[Finding]:
    metadata, spec = meta(obj), ctx.part(obj, "spec", kind="Job")
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    failed = conditions(obj).get("Failed")
    if not failed or failed.get("status") != "True":
        return []
    owner, _ = ctx.index.owner_of(obj)
    group = f"{owner.kind}/{namespace}/{owner.name}" if owner else f"Job/{namespace}/{name}"
    reason = str(failed.get("reason") or "")
    root, evidence, pods = pod_cause(ctx, group)
    pods = [p for p in pods if p.kind == "Pod"]
    events = [
        ev
        for ev in ctx.index.events("Job", namespace, name, str(metadata.get("uid") or ""))
        if ev.reason == "FailedCreate"
    ]
    if root == "Unknown" and events:
        root = classify_admission(events[0].message)
        evidence = [ev.line() for ev in events[:2]]
    head = [
        f"status.conditions[Failed].reason={reason}: {failed.get('message', '')}",
        f"status.failed={(obj.get('status') or {}).get('failed', 0)} backoffLimit={spec.get('backoffLimit', 6)}",
    ]
    if reason == "DeadlineExceeded" and root == "Unknown":
        head.append(f"activeDeadlineSeconds={spec.get('activeDeadlineSeconds')}")
    recs = recs_from(pods, f"kubectl logs -n {namespace} job/{name}")
    first = next((p for p in pods if p.root_cause == root), None)
    if reason == "DeadlineExceeded":
        recs = [
            *recs,
            f"The Job ran past activeDeadlineSeconds={spec.get('activeDeadlineSeconds')}: raise it or make the work faster.",
        ]
    return [
        ctx.finding(
            kind="Job",
            namespace=namespace,
            name=name,
            reason="JobFailed",
            root_cause=root,
            severity="critical",
            owner=owner,
            group=group,
            summary=f"Job {name} failed ({reason or 'Failed'})"
            + (f": {clause}." if first and (clause := cause_clause(first)) else "."),
            evidence=head + evidence,
            recommendations=recs,
        )
    ]


def valid_schedule(schedule: str) -> str | None:
    """None when Kubernetes would accept the cron schedule, else what is wrong with it.

    Kubernetes parses schedules with robfig/cron's standard parser: five fields or a descriptor
    (``@daily``, ``@every 1h30m``). ``cronsim`` checks the fields; what robfig reads differently
    is handled here: ``?`` means ``*``, and cronsim's extensions (``L``, ``W``, ``#``) are refused.
    """
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        return "time zones go in spec.timeZone, not in the schedule"
    if text in _MACROS:
        return None
    if text.startswith("@every "):
        duration = text.removeprefix("@every ").strip()
        return (
            None
            if _GO_DURATION.fullmatch(duration)
            else f"@every takes a duration like 1h30m, not {duration!r}"
        )
    if text.startswith("@"):
        return f"unknown descriptor {text.split()[0]!r}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day month weekday), found {len(fields)}"
    for value, label in zip(fields, _FIELD_NAMES, strict=True):
        if any(mark in value.upper() for mark in ("L", "W", "#")) and not _NAMES.search(value):
            return f"{value!r} in the {label} field is not standard cron"
    try:
        CronSim(" ".join(field.replace("?", "*") for field in fields), _ANY_TIME)
    except CronSimError as exc:
        return f"{str(exc).lower()} field in {text!r}"
    return None


def cronjob(obj: Obj, ctx: Context) -> list[Finding]:
    metadata, spec = meta(obj), section(obj, "spec")
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    schedule = spec.get("schedule")
    problem = valid_schedule(schedule) if isinstance(schedule, str) else "no schedule"
    events = [
        ev
        for ev in ctx.index.events("CronJob", namespace, name)
        if ev.reason in ("UnparseableSchedule", "InvalidSchedule", "FailedNeedsStart", "InvalidTimeZone")
    ]
    if problem is None and not events:
        return []
    evidence = (
        [f"spec.schedule={schedule!r}"]
        + ([f"schedule: {problem}"] if problem else [])
        + [ev.line() for ev in events[:2]]
    )
    what = problem or (events[0].message if events else "")
    return [
        ctx.finding(
            kind="CronJob",
            namespace=namespace,
            name=name,
            reason="CronJobInvalid",
            root_cause="MissingConfiguration",
            severity="warning",
            summary=f"CronJob {name} never runs: {what}.",
            evidence=evidence,
            recommendations=[
                f"Fix spec.schedule of CronJob {name} to a valid 5-field cron expression (e.g. '*/15 * * * *'); put time zones in spec.timeZone."
            ],
        )
    ]


CHECKS = {"Job": job, "CronJob": cronjob}
