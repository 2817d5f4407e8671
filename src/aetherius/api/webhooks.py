"""The Event Gateway: webhooks from outside (Alertmanager first) become Signals on the bus.

Each source has its own token (``api.webhook_tokens.<source>``), separate from API tokens, so an
Alertmanager config file leaking grants nothing but posting alerts. A payload is validated as a
whole and every Signal built before one is published: a bad alert in the middle refuses the
request and publishes nothing. The bus publish is idempotent by ``msg_id`` (JetStream dedup), so
Alertmanager's retry after a 503 cannot create duplicates.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from prometheus_client import Counter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from aetherius.api.deps import ApiContext, context
from aetherius.api.limits import retry_after_header
from aetherius.api.problems import Problem, problem_responses
from aetherius.bus.base import BusUnavailable
from aetherius.names import REJECTED_NAMES, name_problem
from aetherius.scrub import scrub_text
from aetherius.signals import (
    MAX_INT,
    ObjectRef,
    Signal,
    UnstorableSignal,
    check_storable,
    dedup_key,
    text_problem,
)

WEBHOOK_SIGNALS = Counter(
    "aetherius_webhook_signals_total",
    "Signals received by the Event Gateway, by source and outcome (published, refused, bus_unavailable)",
    ["source", "outcome"],
)
MAX_MESSAGE = 4096
BUS_RETRY_AFTER_S = 5

router = APIRouter(prefix="/webhooks", tags=["event gateway"])


def _in_utc(moment: datetime) -> datetime:
    """A time stamp as UTC; one that leaves the calendar there (year 9999 at -23:59) is refused.

    NB: without this the conversion overflowed later, after the request had been accepted.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the years 1-9999 once converted to UTC") from None


WireTime = Annotated[datetime, AfterValidator(_in_utc)]


def _storable_text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# Text the store can hold: refused here, where the error can name the field, not at the INSERT.
WireText = Annotated[str, AfterValidator(_storable_text)]
Labels = dict[WireText, WireText]


# -- Alertmanager (webhook payload version 4, notify/webhook in prometheus/alertmanager) --------


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: WireTime
    endsAt: WireTime | None = None
    generatorURL: WireText = ""
    fingerprint: WireText = ""


class AlertmanagerPayload(BaseModel):
    """What Alertmanager's ``webhook_config`` receiver POSTs (``version`` ``"4"``)."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = ""
    truncatedAlerts: int = Field(default=0, ge=0, le=MAX_INT)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AlertmanagerAlert]


# Label → object kind, most specific first: an alert naming a pod is about that pod.
_OBJECT_LABELS = (
    ("pod", "Pod"),
    ("statefulset", "StatefulSet"),
    ("deployment", "Deployment"),
    ("daemonset", "DaemonSet"),
    ("job_name", "Job"),
    ("node", "Node"),
)
_WORKLOAD_LABELS = (("deployment", "Deployment"), ("statefulset", "StatefulSet"), ("daemonset", "DaemonSet"))
_CRITICAL = {"critical", "error", "page", "high", "fatal", "emergency"}
_WARNING = {"warning", "warn", "medium", "major", "minor"}


def alert_severity(label: str | None) -> str:
    value = (label or "warning").strip().lower()
    if value in _CRITICAL:
        return "critical"
    if value in _WARNING:
        return "warning"
    return "info"


def _valid(kind: str, name: str) -> bool:
    """Whether a label can name an object of ``kind``; one that cannot is counted and ignored.

    NB: ignored, not refused: the alert is still worth keeping (an alert-level incident), it just
    cannot point a read at anything.
    """
    if name_problem(kind, name) is None:
        return True
    REJECTED_NAMES.labels(entry="webhook").inc()
    return False


def _alert_object(labels: Mapping[str, str]) -> tuple[ObjectRef, ObjectRef | None]:
    namespace = labels.get("namespace", "")
    if namespace and not _valid("Namespace", namespace):
        namespace = ""
    for label, kind in _OBJECT_LABELS:
        name = labels.get(label)
        if not name or not _valid(kind, name) or (kind != "Node" and not namespace):
            continue
        ns = "" if kind == "Node" else namespace
        obj = ObjectRef(kind=kind, name=name, namespace=ns)
        owner = None
        if kind == "Pod":
            owner = next(
                (
                    ObjectRef(kind=k, name=labels[lbl], namespace=namespace)
                    for lbl, k in _WORKLOAD_LABELS
                    if labels.get(lbl) and _valid(k, labels[lbl])
                ),
                None,
            )
        return obj, owner
    if namespace:
        return ObjectRef(kind="Namespace", name=namespace), None
    return ObjectRef(kind="Alert", name=labels.get("alertname", "alert")[:253]), None


def _alert_message(alert: AlertmanagerAlert, payload: AlertmanagerPayload) -> str:
    annotations = {**payload.commonAnnotations, **alert.annotations}
    summary = annotations.get("summary", "").strip()
    description = annotations.get("description", "").strip() or annotations.get("message", "").strip()
    if summary and description and description != summary:
        text = f"{summary} — {description}"
    else:
        text = summary or description or alert.labels.get("alertname", "alert")
    return text[:MAX_MESSAGE]


def _scrubbed(labels: Mapping[str, str]) -> dict[str, str]:
    """Label values as a Signal keeps them: scrubbed like every text from outside (a rule's
    label may carry a connection string)."""
    return {key: scrub_text(value) for key, value in labels.items()}


def _rfc3339(moment: datetime) -> str:
    return _in_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_to_signal(
    alert: AlertmanagerAlert, payload: AlertmanagerPayload, *, default_cluster: str
) -> Signal:
    """One Alertmanager alert as a Signal.

    The dedup key is the alert's fingerprint (Alertmanager's hash of its label set), so every
    notification about the same alert lands on the same key. ``occurrence`` must make the bus
    ``msg_id`` differ between one firing episode and its resolution and between episodes, while
    staying identical for Alertmanager's repeat notifications: it is the episode's ``startsAt``
    in seconds, doubled, plus one when resolved.
    """
    labels = dict(alert.labels)
    cluster = labels.get("cluster") or default_cluster
    fingerprint = alert.fingerprint or dedup_key(*(f"{k}={v}" for k, v in sorted(labels.items())))
    obj, owner = _alert_object(labels)
    resolved = alert.status == "resolved"
    started = max(1, int(alert.startsAt.timestamp())) if alert.startsAt.year > 1 else 1
    ended = alert.endsAt if resolved and alert.endsAt is not None and alert.endsAt.year > 1 else None
    return Signal(
        cluster_id=cluster,
        source="alertmanager",
        object=obj,
        owner=owner,
        reason=labels.get("alertname", "Alert")[:128],
        message=scrub_text(_alert_message(alert, payload)),
        severity=alert_severity(labels.get("severity")),
        dedup_key=dedup_key("alertmanager", cluster, fingerprint),
        occurrence=started * 2 + (1 if resolved else 0),
        first_seen=_rfc3339(alert.startsAt) if alert.startsAt.year > 1 else "",
        last_seen=_rfc3339(ended or datetime.now(UTC)),
        container=labels.get("container", ""),
        resolved=resolved,
        labels=_scrubbed(labels),
    )


# -- Generic JSON shape --------------------------------------------------------------------------


class GenericSignal(BaseModel):
    """One observation from any tool that can POST JSON (a CI job, a cron check, a script)."""

    model_config = ConfigDict(extra="forbid")

    id: WireText = Field(min_length=1, max_length=256, description="sender's stable id of the observation")
    occurrence: int = Field(default=1, ge=1, le=MAX_INT, description="bump to report the same thing again")
    cluster_id: WireText | None = Field(default=None, max_length=128)
    kind: WireText = Field(default="Pod", min_length=1, max_length=63)
    name: WireText = Field(min_length=1, max_length=253)
    namespace: WireText = Field(default="", max_length=63)
    reason: WireText = Field(min_length=1, max_length=128)
    message: WireText = Field(default="", max_length=MAX_MESSAGE)
    severity: Literal["info", "warning", "critical"] = "warning"
    resolved: bool = False
    owner_kind: WireText | None = Field(default=None, max_length=63)
    owner_name: WireText | None = Field(default=None, max_length=253)
    container: WireText = Field(default="", max_length=63)
    labels: Labels = Field(default_factory=dict, max_length=64)
    observed_at: WireTime | None = None


class GenericPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signals: list[GenericSignal] = Field(min_length=1)


def generic_to_signal(item: GenericSignal, *, source: str, default_cluster: str) -> Signal:
    cluster = item.cluster_id or default_cluster
    owner = (
        ObjectRef(kind=item.owner_kind, name=item.owner_name, namespace=item.namespace)
        if item.owner_kind and item.owner_name
        else None
    )
    seen = _rfc3339(item.observed_at or datetime.now(UTC))
    return Signal(
        cluster_id=cluster,
        source="webhook",
        object=ObjectRef(kind=item.kind, name=item.name, namespace=item.namespace),
        owner=owner,
        reason=item.reason,
        message=scrub_text(item.message or item.reason),
        severity=item.severity,
        dedup_key=dedup_key("webhook", source, cluster, item.id),
        occurrence=item.occurrence,
        first_seen=seen,
        last_seen=seen,
        container=item.container,
        resolved=item.resolved,
        labels=_scrubbed({**item.labels, "aetherius.io/webhook-source": source}),
    )


# -- Routes --------------------------------------------------------------------------------------


class WebhookAccepted(BaseModel):
    accepted: int = Field(description="Signals published on the bus")
    msg_ids: list[str]


def _presented_token(request: Request, *, allow_query: bool) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if allow_query:
        return request.query_params.get("token") or None
    return None


def source_guard(source: str) -> object:
    """A dependency checking the per-source webhook token and the per-source rate limit."""

    async def guard(request: Request) -> ApiContext:
        ctx = context(request)
        expected = ctx.settings.api.webhook_tokens.get(source)
        if not expected:
            raise Problem(
                403,
                f"the {source} webhook is disabled: set api.webhook_tokens.{source} to enable it",
                kind="webhook-disabled",
            )
        presented = _presented_token(request, allow_query=ctx.settings.api.webhook_query_token)
        if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise Problem(
                401,
                f"missing or wrong {source} webhook token",
                headers={"WWW-Authenticate": 'Bearer realm="aetherius-webhooks"'},
            )
        wait = ctx.webhook_limiter.acquire(f"webhook:{source}")
        if wait > 0:
            raise Problem(
                429, f"rate limit exceeded for the {source} webhook", headers=retry_after_header(wait)
            )
        return ctx

    guard.__name__ = f"webhook_{source}"
    return Depends(guard)


def served_clusters(ctx: ApiContext) -> frozenset[str]:
    """The clusters a webhook may name: this one, the named ``clusters`` entries of out-of-cluster
    mode, and ``api.webhook_clusters``.

    NB: a caller could otherwise invent a cluster per request and grow the registry, the
    per-cluster metric labels and tables without bound; and an orchestrator could diagnose a
    Signal about another cluster against its own.
    """
    named = (c.name for c in ctx.settings.clusters if c.name)
    return frozenset((ctx.settings.cluster_id or "default", *named, *ctx.settings.api.webhook_clusters))


def known_cluster(signals: Sequence[Signal], *, ctx: ApiContext, source: str, items: str) -> None:
    served = served_clusters(ctx)
    for index, signal in enumerate(signals):
        if signal.cluster_id not in served:
            WEBHOOK_SIGNALS.labels(source, "unknown_cluster").inc(len(signals))
            field = "labels.cluster" if source == "alertmanager" else "cluster_id"
            raise Problem(
                422,
                f"{items}[{index}].{field}: cluster {signal.cluster_id[:253]!r} is not served here "
                f"(known: {', '.join(sorted(served))}; add it to api.webhook_clusters); nothing was published",
                kind="unknown-cluster",
                errors=[
                    {
                        "loc": ["body", items, index, field],
                        "msg": "unknown cluster",
                        "type": "unknown_cluster",
                    }
                ],
            )


def storable(signals: Sequence[Signal], *, source: str, items: str) -> Sequence[Signal]:
    """Every Signal of a request fits the store and the bus, or the request is refused whole (422)."""
    for index, signal in enumerate(signals):
        try:
            check_storable(signal, entry="webhook")
        except UnstorableSignal as exc:
            WEBHOOK_SIGNALS.labels(source, "refused").inc(len(signals))
            detail = f"{items}[{index}]: its {exc.field} {exc.problem}; nothing was published"
            raise Problem(
                422,
                detail,
                kind="unstorable",
                errors=[{"loc": ["body", items, index, exc.field], "msg": exc.problem, "type": "unstorable"}],
            ) from None
    return signals


async def _publish(ctx: ApiContext, *, source: str, signals: Sequence[Signal]) -> WebhookAccepted:
    items = "alerts" if source == "alertmanager" else "signals"
    signals = storable(signals, source=source, items=items)
    known_cluster(signals, ctx=ctx, source=source, items=items)
    try:
        await ctx.bus.publish(signals)
    except BusUnavailable as exc:
        WEBHOOK_SIGNALS.labels(source, "bus_unavailable").inc(len(signals))
        raise Problem(
            503,
            f"the message bus is unavailable ({exc}); nothing was published, retry later",
            headers=retry_after_header(BUS_RETRY_AFTER_S),
        ) from None
    WEBHOOK_SIGNALS.labels(source, "published").inc(len(signals))
    return WebhookAccepted(accepted=len(signals), msg_ids=[s.msg_id for s in signals])


_RESPONSES = problem_responses(401, 403, 413, 422, 429, 503)


@router.post("/alertmanager", status_code=202, responses=_RESPONSES)
async def alertmanager_webhook(
    payload: AlertmanagerPayload,
    ctx: Annotated[ApiContext, source_guard("alertmanager")],
) -> WebhookAccepted:
    """Alertmanager ``webhook_config`` receiver: each alert becomes one Signal (resolved too)."""
    limit = ctx.settings.api.webhook_max_alerts
    if len(payload.alerts) > limit:
        WEBHOOK_SIGNALS.labels("alertmanager", "refused").inc(len(payload.alerts))
        raise Problem(413, f"{len(payload.alerts)} alerts in one notification; the limit is {limit}")
    default_cluster = ctx.settings.cluster_id or "default"
    signals = [alert_to_signal(a, payload, default_cluster=default_cluster) for a in payload.alerts]
    return await _publish(ctx, source="alertmanager", signals=signals)


@router.post("/generic", status_code=202, responses=_RESPONSES)
async def generic_webhook(
    payload: GenericPayload,
    ctx: Annotated[ApiContext, source_guard("generic")],
) -> WebhookAccepted:
    """Signals in Aetherius' own documented JSON shape (see ``GenericSignal``)."""
    limit = ctx.settings.api.webhook_max_alerts
    if len(payload.signals) > limit:
        WEBHOOK_SIGNALS.labels("generic", "refused").inc(len(payload.signals))
        raise Problem(413, f"{len(payload.signals)} signals in one request; the limit is {limit}")
    default_cluster = ctx.settings.cluster_id or "default"
    signals = [
        generic_to_signal(s, source="generic", default_cluster=default_cluster) for s in payload.signals
    ]
    return await _publish(ctx, source="generic", signals=signals)
