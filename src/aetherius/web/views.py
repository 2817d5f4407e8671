"""What the templates show, computed in Python: health, counts, the chart, a report's parts.

Templates only lay things out; anything that needs a decision (is a cluster healthy, which
evidence lines, how tall a bar) is made here, where it is typed and tested.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from markdown_it import MarkdownIt
from markupsafe import Markup

from aetherius.api.cluster_status import cluster_out
from aetherius.api.schemas import IncidentDetail, IncidentOut
from aetherius.diagnosis.model import CAUSE_WORDS

SEVERITY_ORDER = ("critical", "warning", "info")
# The incident list's state filter: "unresolved" is open or acknowledged, as the overview counts.
INCIDENT_STATES = {
    "unresolved": "not resolved",
    "open": "open",
    "acknowledged": "acknowledged",
    "resolved": "resolved",
}
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown(text: str) -> Markup:
    """Render markdown without raw HTML (runbooks may come from a user's ConfigMap)."""
    return Markup(_md.render(text or ""))


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def duration(seconds: float) -> str:
    """A span of time as a person says it: "4s", "1m 35s", "2h 5m"."""
    whole = max(0, round(float(seconds)))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60}s"
    return f"{whole // 3600}h {whole % 3600 // 60}m"


def stamp(moment: datetime | str | None) -> str:
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        return moment.replace("T", " ").removesuffix("Z") + (" UTC" if moment.endswith("Z") else "")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def headline(incident: Any) -> str:
    """What broke, in words, and where ("Out of memory: StatefulSet db/postgres"); the first
    Signal's reason ("BackOff") only while no diagnosis has said more."""
    where = f"{incident.owner_kind or incident.object_kind} {incident.namespace}/{incident.owner_name or incident.object_name}"
    words = CAUSE_WORDS.get(incident.root_cause or "")
    if not words or incident.root_cause == "Unknown":
        return f"{incident.reason} in {where}"
    return f"{words[:1].upper()}{words[1:]}: {where}"


def past_title(title: str, root_cause: str | None) -> str:
    """A past incident's title as the dashboard says it ("The image does not exist: Deployment
    shop/frontend"), from the one it was indexed by ("ImagePullBackOff on Deployment shop/frontend")."""
    _, on, subject = (title or "").partition(" on ")
    words = CAUSE_WORDS.get(root_cause or "")
    if not on or not words or root_cause == "Unknown":
        return title
    return f"{words[:1].upper()}{words[1:]}: {subject}"


_PLACEHOLDER = re.compile(r"\b(NS|POD|CONTAINER|DEPLOYMENT|SERVICE|INGRESS|NODE)\b")
_FENCE = re.compile(r"(```[a-z]*\n)(.*?)(```)", re.S)


def fill_runbook(markdown_text: str, names: Mapping[str, str]) -> str:
    """A runbook's commands with the incident's own names in place of ``NS``, ``POD``… (only in
    code blocks, and only the names known: the rest stay as placeholders to fill)."""

    def block(match: re.Match[str]) -> str:
        body = _PLACEHOLDER.sub(lambda m: names.get(m.group(1), m.group(1)), match.group(2))
        return match.group(1) + body + match.group(3)

    return _FENCE.sub(block, markdown_text)


def safe_next(target: str) -> str:
    """Only same-site paths after login: never an open redirect to another host."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@dataclass(frozen=True)
class ClusterHealth:
    """One cluster as the overview and the cluster list show it."""

    id: str
    name: str
    healthy: bool
    status: str  # connected, stale or unreachable (``api.cluster_status``)
    last_seen: datetime | None
    detected_by: str = ""
    watcher_status: str = ""
    signals_behind: int | None = None
    watcher_note: str = ""

    @property
    def label(self) -> str:
        """Its name, and its id too when they differ (a name alone can be ambiguous)."""
        return self.name if self.name == self.id or not self.name else f"{self.name} ({self.id})"


# How each detection method reads on the page (``aetherius.kube.cluster_id``).
DETECTED_BY = {
    "env": "configured (name or CLUSTER_ID)",
    "config": "configured",
    "configmap": "aetherius-config ConfigMap",
    "namespace_uid": "kube-system namespace UID",
    "signals": "named by its Signals",
}


def detected_by_text(method: str) -> str:
    if method.startswith("node_label_"):
        return f"node label ({method.removeprefix('node_label_').upper()})"
    return DETECTED_BY.get(method, method or "unknown")


def cluster_health(cluster: Any, *, now: datetime | None = None) -> ClusterHealth:
    health = dict(getattr(cluster, "watcher_health", {}) or {})
    out = cluster_out(cluster, now=now)
    healthy = out.status == "connected" and out.watcher_status.lower() in ("", "ok", "healthy", "ready")
    note = ""
    if out.watcher_status == "unreachable" and health.get("seconds_since_report") is not None:
        note = f"no report for {duration(health['seconds_since_report'])}"
    elif health.get("seconds_since_progress") is not None:
        note = f"last progress {duration(health['seconds_since_progress'])} ago"
    return ClusterHealth(
        id=out.id,
        name=out.name,
        healthy=healthy,
        status=out.status,
        last_seen=out.last_seen,
        detected_by=detected_by_text(out.detected_by),
        watcher_status=out.watcher_status,
        signals_behind=out.signals_behind,
        watcher_note=note,
    )


def overview_clusters(clusters: list[ClusterHealth], incidents: list[IncidentOut]) -> list[ClusterHealth]:
    """The clusters to list beside ``incidents``: every one that reported, and every one that has
    an incident here but no record of its own (never "no cluster has reported" beside its incidents)."""
    known = {c.id for c in clusters}
    latest: dict[str, datetime] = {}
    for i in incidents:
        if i.cluster_id not in known:
            latest[i.cluster_id] = max(latest.get(i.cluster_id, i.last_seen), i.last_seen)
    extra = [
        ClusterHealth(id=cid, name=cid, healthy=False, status="known by its incidents only", last_seen=seen)
        for cid, seen in sorted(latest.items())
    ]
    return clusters + extra


def count_by_severity(incidents: list[IncidentOut]) -> list[tuple[str, int]]:
    counts = Counter(i.severity for i in incidents)
    return [(s, counts.get(s, 0)) for s in SEVERITY_ORDER]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    label: str
    count: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    max_count: int
    days: int
    description: str


def incidents_chart(incidents: list[IncidentOut], *, days: int = 14, now: datetime | None = None) -> Chart:
    """New incidents per day over ``days`` days, as bar geometry for an inline SVG."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    start = today - timedelta(days=days - 1)
    counts = Counter(i.first_seen.astimezone(UTC).date() for i in incidents)
    width, height, top = 560, 160, 16
    slot = width / days
    peak = max([counts.get(start + timedelta(d), 0) for d in range(days)] + [1])
    bars = []
    for d in range(days):
        day = start + timedelta(d)
        count = counts.get(day, 0)
        bar_height = (height - top - 20) * count / peak
        bars.append(
            Bar(
                x=round(d * slot + slot * 0.15, 1),
                y=round(height - 20 - bar_height, 1),
                height=round(bar_height, 1),
                label=day.strftime("%m-%d"),
                count=count,
            )
        )
    total = sum(b.count for b in bars)
    description = (
        f"{total} incidents opened in the last {days} days; the busiest day had {peak if total else 0}."
    )
    return Chart(width=width, height=height, bars=bars, max_count=peak, days=days, description=description)


@dataclass(frozen=True)
class IncidentFilterForm:
    cluster: str = ""
    namespace: str = ""
    severity: str = ""
    state: str = ""
    q: str = ""

    @classmethod
    def parse(cls, *, cluster: str, namespace: str, severity: str, state: str, q: str) -> IncidentFilterForm:
        return cls(
            cluster=cluster.strip()[:253],
            namespace=namespace.strip()[:253],
            severity=severity if severity in SEVERITY_ORDER else "",
            state=state if state in INCIDENT_STATES else "",
            q=q.strip()[:200],
        )

    def query(self, cursor: str | None) -> str:
        if not cursor:
            return ""
        values = {k: v for k, v in vars(self).items() if v}
        return urlencode({**values, "cursor": cursor})


def events_url(*, since: datetime, cluster: str = "") -> str:
    """The incident list's live updates: changes after it was rendered, of its cluster only."""
    values = {"since": since.isoformat(), **({"cluster": cluster} if cluster else {})}
    return f"/api/v1/events?{urlencode(values)}"


def _lines(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    out = []
    for item in value:
        if isinstance(item, dict):
            known = item.get("text") or item.get("line") or item.get("summary")
            # NB: never a dict's repr on a page: an unknown shape reads as "key: value" pairs.
            out.append(str(known) if known else "; ".join(f"{k}: {v}" for k, v in item.items()))
        else:
            out.append(str(item))
    return out


def _names(incident: Any, doc: Mapping[str, Any]) -> dict[str, str]:
    """What a runbook's placeholders stand for in this incident: the lead finding's object first."""
    names = {"NS": incident.namespace} if incident.namespace else {}
    findings = [f for f in doc.get("findings") or () if isinstance(f, dict)]
    for finding in findings:
        kind, name = str(finding.get("kind") or ""), str(finding.get("name") or "")
        key = {
            "Pod": "POD",
            "Deployment": "DEPLOYMENT",
            "Service": "SERVICE",
            "Ingress": "INGRESS",
            "Node": "NODE",
        }.get(kind)
        if (
            key
            and key not in names
            and name
            and finding.get("namespace", incident.namespace) in ("", incident.namespace)
        ):
            names[key] = name
        if kind == "Pod" and finding.get("container") and "CONTAINER" not in names:
            names["CONTAINER"] = str(finding["container"])
    if "DEPLOYMENT" not in names and incident.owner_kind == "Deployment":
        names["DEPLOYMENT"] = incident.owner_name
    if "POD" not in names and incident.object_kind == "Pod":
        names["POD"] = incident.object_name
    return names


_POD_UID = re.compile(r"\s*\([0-9a-f]{8}-[0-9a-f-]{27}\)")
_DIGITS = re.compile(r"\d+")
_BACK_OFF = re.compile(r"back-off\b.*\brestarting failed container", re.I)
_CONTAINER = re.compile(r"\bcontainer[= ]([\w.-]+)")
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


@dataclass
class TimelineRow:
    """One thing that happened: the Signals of one reason about one object, their counts folded."""

    first: str
    last: str
    reason: str
    severity: str
    kind: str
    name: str
    message: str
    signals: int
    count: int
    times: int = 1  # how often it happened, as far as the Signals tell
    _per_source: Counter[str] = field(default_factory=Counter, repr=False)  # by reason, or Ready moment

    @property
    def since(self) -> str:
        """When it first happened: the time alone when that was the same day as the last time."""
        if self.first[:10] == self.last[:10]:
            return stamp(self.first)[11:]
        return stamp(self.first)


def _thing(signal: Any, message: str) -> tuple[str, str]:
    """The reason to show and the shape of what a Signal says happened (rows are keyed by them).

    A crash loop is said twice, by the pod (CrashLoopBackOff, "back-off 10s restarting failed
    container=api") and by the kubelet (BackOff, "Back-off restarting failed container api"), and
    every cleared failure of a pod says "is Ready again": one thing each, not one per wording.
    """
    if getattr(signal, "resolved", False) and " is Ready again" in message:
        return "Ready", "ready again"
    if signal.reason in ("BackOff", "CrashLoopBackOff") and _BACK_OFF.search(message):
        container = _CONTAINER.search(message)
        return "CrashLoopBackOff", "back-off restarting " + (container.group(1) if container else "")
    return signal.reason, _DIGITS.sub("#", message)


def timeline(signals: list[Any], *, limit: int) -> tuple[list[TimelineRow], str]:
    """The incident's Signals as one row per thing that happened, and what the cap left out.

    A Back-off Event's count steps (x2 … x19), a crash loop reported as CrashLoopBackOff by the
    pod and as BackOff by the kubelet: the same thing, seen again. Rows are keyed by what happened
    to which object (``_thing``); how often is the largest count seen, or the number of Signals of
    one source when that is more (two sources saying it once each is still once).
    """
    rows: dict[tuple[str, str, str, str], TimelineRow] = {}
    for s in sorted(signals, key=lambda s: (s.last_seen or "", s.id)):
        message = _POD_UID.sub("", s.message or "")
        reason, shape = _thing(s, message)
        key = (reason, s.kind, s.name, shape)
        # NB: a "Ready again" Signal carries the first_seen and count of the failure it clears;
        # when it happened is its last_seen, and how often is how many moments it was said at.
        ready = shape == "ready again"
        began = s.last_seen if ready else (s.first_seen or s.last_seen)
        row = rows.get(key)
        if row is None:
            row = rows[key] = TimelineRow(
                first=began,
                last=s.last_seen,
                reason=reason,
                severity=s.severity,
                kind=s.kind,
                name=s.name,
                message=message,
                signals=0,
                count=s.count,
            )
        row.first = min(row.first, began)
        row.last = max(row.last, s.last_seen)
        row.signals += 1
        row.count = max(row.count, s.count)
        row.message = message  # the newest wording
        if _SEVERITY_RANK.get(s.severity, 3) < _SEVERITY_RANK.get(row.severity, 3):
            row.severity = s.severity
        if ready:
            row._per_source[s.last_seen] += 1
            row.times = len(row._per_source)
        else:
            row._per_source[s.reason] += 1
            row.times = max(row.count, *row._per_source.values())
    _between_restarts(rows, signals)
    ordered = sorted(rows.values(), key=lambda r: r.last)
    note = (
        f"The newest {limit} Signals are shown; older ones are in the API." if len(signals) >= limit else ""
    )
    return ordered, note


def _between_restarts(rows: dict[tuple[str, str, str, str], TimelineRow], signals: list[Any]) -> None:
    """A pod "Ready again" that failed again afterwards was up between restarts, not recovered.

    NB: in a crash loop a container without a readiness probe is Ready for the seconds it runs,
    so the watcher truthfully reports it Ready again, every loop; said as is, the timeline reads
    as if the pod kept recovering.
    """
    failed_at: dict[tuple[str, str], str] = {}
    ready_at: dict[tuple[str, str], str] = {}  # when it first became Ready (a Signal's last_seen)
    for s in signals:
        key = (s.kind, s.name)
        if not getattr(s, "resolved", False):
            failed_at[key] = max(failed_at.get(key, ""), s.last_seen or "")
        elif " is Ready again" in (s.message or ""):
            ready_at[key] = min(ready_at.get(key) or s.last_seen, s.last_seen)
    for shape, row in rows.items():
        failed = failed_at.get((row.kind, row.name), "")
        # NB: times are to the second; a failure in the same second as the first Ready came before it
        if shape[3] != "ready again" or failed <= ready_at.get((row.kind, row.name), ""):
            continue
        row.severity = "warning"
        if failed >= row.last:
            times = f" {row.times} times" if row.times > 1 else ""
            row.message = f"pod {row.name} was Ready{times} between restarts, and failed again after"
        else:  # Ready now, but it failed after being Ready before: maybe between two restarts
            row.message = f"pod {row.name} is Ready again (Ready {row.times} times, failing again in between)"


@dataclass
class ReportView:
    """The latest report's parts, read defensively: reports only ever gain fields."""

    version: int = 0
    root_cause: str = ""
    title: str = ""
    sentence: str = ""
    evidence: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    runbook: str = ""
    similar: list[dict[str, Any]] = field(default_factory=list)
    affected: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)  # the evidence quoted from container logs
    names: dict[str, str] = field(default_factory=dict)  # runbook placeholders → this incident's

    @classmethod
    def of(cls, detail: IncidentDetail) -> ReportView:
        incident = detail.incident
        view = cls(
            root_cause=incident.root_cause or "Unknown", sentence=incident.summary, title=headline(incident)
        )
        view.affected = list(incident.affected_objects)
        if not detail.reports:
            view.sentence = view.sentence or "Not diagnosed yet: the report appears here when it is ready."
            return view
        # NB: an investigation's answer is a version too, shown in its own panel, never as the diagnosis
        rules = [r for r in detail.reports if r.source != "investigation"]
        if not rules:
            view.sentence = view.sentence or "Not diagnosed yet: the report appears here when it is ready."
            return view
        latest = rules[0]
        doc = latest.document
        view.version = latest.version
        view.root_cause = latest.root_cause or doc.get("root_cause") or view.root_cause
        view.sentence = latest.summary or str(doc.get("summary", "")) or view.sentence
        view.title = str(doc.get("title") or "") or view.title
        view.names = _names(incident, doc)
        view.evidence = _lines(doc.get("evidence"))
        view.log_lines = [line for line in view.evidence if line.startswith("log (")][:8]
        view.recommendations = _lines(doc.get("recommendations"))
        runbook = doc.get("runbook")
        view.runbook = str(runbook.get("slug", "")) if isinstance(runbook, dict) else str(runbook or "")
        similar = doc.get("similar_incidents") or doc.get("similar") or []
        view.similar = [s for s in similar if isinstance(s, dict)]
        affected = doc.get("affected_objects") or doc.get("affected")
        if isinstance(affected, list) and affected:
            view.affected = [a for a in affected if isinstance(a, dict)]
        return view
