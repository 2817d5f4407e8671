"""``diagnose``: read the state through the gateway once, index it, run every analyzer.

Reads: one LIST per kind (namespaced kinds in the requested namespace), then the logs of crashed
containers (bounded, see ``logplan``). Analysis is pure and synchronous over the index. "Now" is
a snapshot's capture time (``aetherius.io/captured-at``; else its newest timestamp), so a snapshot
diagnoses the same on any day, or the wall clock on a live cluster; callers may pass ``now``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from prometheus_client import Counter

from aetherius.diagnosis.analyzers import (
    hpa,
    ingress,
    jobs,
    logs,
    node,
    pdb,
    pod,
    policy,
    service,
    storage,
    workloads,
)
from aetherius.diagnosis.chains import link_findings
from aetherius.diagnosis.context import Context
from aetherius.diagnosis.index import Index, Malformed, parse_time, pod_name
from aetherius.diagnosis.logplan import MAX_LOG_GROUPS, read_logs
from aetherius.diagnosis.model import SEVERITY_RANK, DiagnosisResult, Finding
from aetherius.gateway import KINDS, BackendError, ExecutionGateway
from aetherius.gateway.decode import AnalysisItem
from aetherius.gateway.redact import scrub_text
from aetherius.gateway.snapshot import paused_gc
from aetherius.kube.selectors import SelectorError, label_matcher
from aetherius.logs import get_logger

log = get_logger(__name__)

SKIPPED = Counter(
    "aetherius_diagnosis_objects_skipped_total",
    "Objects a diagnosis could not analyze: malformed input, or a bug in an analyzer",
    ["cause"],
)

__all__ = ["SCAN_KINDS", "ClusterUnreadable", "analyze_state", "diagnose", "new_scan_id"]

Obj = dict[str, Any]
Check = Callable[[Obj, Context], list[Finding]]

# Pods first: workload analyzers name their cause from their pods' findings.
_MODULES: tuple[ModuleType, ...] = (pod, workloads, jobs, storage, service, ingress, node, hpa, pdb, policy)
# Secrets are listed from snapshots (metadata) and, live, only when metadata-only Secret reads are
# enabled (``gateway.secret_metadata``); a plain LIST would carry their data.
SCAN_KINDS = tuple(kind for kind in KINDS if kind != "Secret")
_CLUSTER_FINDING_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")


class ClusterUnreadable(Exception):
    """The Pods of a live cluster could not be listed: the scan did not run.

    NB: Pods are where almost every failure shows; a scan without them would report "No problems
    found" about a cluster it never saw. That false all-clear is worse than no answer.
    """


def new_scan_id() -> str:
    return f"scan-{uuid.uuid4().hex[:12]}"


async def _list_all(
    gateway: ExecutionGateway,
    kinds: Iterable[str],
    *,
    namespace: str | None,
    requester: str,
    warnings: list[str],
) -> dict[str, Sequence[AnalysisItem]]:
    failed: dict[str, BackendError] = {}

    async def one(kind: str) -> tuple[str, Sequence[AnalysisItem]]:
        try:
            return kind, await gateway.scan_objects(kind, requester=requester, namespace=namespace)
        except BackendError as exc:
            failed[kind] = exc
            warnings.append(f"{kind} not read: {exc}")
            return kind, []

    results = await asyncio.gather(*(one(kind) for kind in kinds))
    if gateway.source == "live" and "Pod" in failed:
        raise ClusterUnreadable(str(failed["Pod"]))
    # NB: a kind is in the state when it was read, even empty ("none exist"); a kind missing from
    # a snapshot, or whose read failed, is absent ("not checked"): see ``Index.has``.
    return {
        kind: items
        for kind, items in results
        if kind not in failed and (items or gateway.source == "live" or gateway.holds(kind))
    }


def analyze_state(
    state: Mapping[str, Sequence[AnalysisItem]], ctx: Context | None = None, *, now: datetime | None = None
) -> tuple[list[Finding], Context]:
    """Run every analyzer over already-read state (logs, if any, are in ``ctx``)."""
    if ctx is None:
        index = Index.build(state)
        ctx = Context(index=index, now=now or parse_time(index.newest) or datetime.now(UTC))
    findings: list[Finding] = []
    seen: set[tuple[str, str, str, str]] = set()
    for module in _MODULES:
        checks: dict[str, Check] = module.CHECKS
        for kind, check in checks.items():
            for obj in ctx.index.of_kind(kind).values() if kind != "Pod" else _not_quiet(ctx.index):
                try:
                    produced = check(obj, ctx)
                except (Malformed, ValueError, TypeError, AttributeError) as exc:
                    # A field of the wrong type or value: the object's fault, said as such.
                    SKIPPED.labels(cause="malformed").inc()
                    ctx.warnings.append(
                        f"{kind} {_name(obj)} skipped: malformed ({type(exc).__name__}: {exc})"
                    )
                    continue
                except (KeyError, IndexError, LookupError) as exc:
                    # NB: analyzers read fields with .get(); a missing key or index that raises is
                    # a bug in the analyzer, not in the object (KeyError('spec') used to be called
                    # "malformed"): the scan goes on, the bug is logged with its traceback,
                    # counted apart and said as such.
                    SKIPPED.labels(cause="bug").inc()
                    log.error("analyzer failed", kind=kind, object=_name(obj)[:300], exc_info=exc)
                    ctx.warnings.append(
                        f"{kind} {_name(obj)} skipped: internal error in the {kind} analyzer "
                        f"({type(exc).__name__}: {exc}); this is a bug, please report it"
                    )
                    continue
                _keep(produced, findings, seen, ctx)
    reported = {(f.namespace, f.name) for f in findings if f.kind == "Pod"}
    try:
        _keep(logs.errors_in_logs(ctx, reported), findings, seen, ctx)
    except (Malformed, ValueError, TypeError, AttributeError) as exc:
        SKIPPED.labels(cause="malformed").inc()
        ctx.warnings.append(f"logs of running pods skipped: malformed ({type(exc).__name__}: {exc})")
    link_findings(findings, ctx)
    return findings, ctx


def _keep(
    produced: list[Finding], findings: list[Finding], seen: set[tuple[str, str, str, str]], ctx: Context
) -> None:
    """One finding per (object, reason); filed under its group for the workload analyzers."""
    for finding in produced:
        key = (finding.kind, finding.namespace, finding.name, finding.reason)
        if key in seen:
            continue
        seen.add(key)
        findings.append(finding)
        group = ctx.by_group.setdefault(finding.group, [])
        if finding not in group:
            group.append(finding)


def _not_quiet(index: Index) -> list[Obj]:
    """The pods worth a look: most pods are quiet (plainly running, no event about them).

    A ``PlainPod`` is always quiet (the loader keeps that view only of pods no event is about).
    """
    quiet = index.quiet
    return [pod for pod in index.pods if isinstance(pod, dict) and id(pod) not in quiet]


def _name(obj: Any) -> str:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(metadata, dict):
        return "?"
    ns = metadata.get("namespace")
    return f"{ns}/{metadata.get('name')}" if ns else str(metadata.get("name"))


def _labels_of(ctx: Context, finding: Finding) -> dict[str, Any]:
    obj = ctx.index.get(finding.kind, finding.namespace, finding.name)
    labels = ((obj or {}).get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _in_scope(finding: Finding, ctx: Context, *, namespace: str | None, selector: str | None) -> bool:
    if namespace and finding.namespace != namespace:
        if finding.kind == "Node":
            return any(pod_name(p)[0] == namespace for p in ctx.index.pods_by_node.get(finding.name, []))
        return finding.kind in _CLUSTER_FINDING_KINDS
    if selector:
        return label_matcher(selector)(_labels_of(ctx, finding))
    return True


def order(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (
            f.namespace,
            f.group,
            -SEVERITY_RANK[f.severity],
            f.kind != (f.owner.kind if f.owner else f.kind),
            f.kind,
            f.name,
            f.reason,
        ),
    )


async def diagnose(
    gateway: ExecutionGateway,
    *,
    namespace: str | None = None,
    selector: str | None = None,
    scan_id: str | None = None,
    now: datetime | None = None,
    max_log_groups: int = MAX_LOG_GROUPS,
    progress: Callable[[str], None] | None = None,
) -> DiagnosisResult:
    """Diagnose a whole cluster (or one namespace) through the gateway."""
    with paused_gc():
        return await _diagnose(
            gateway,
            namespace=namespace,
            selector=selector,
            scan_id=scan_id or new_scan_id(),
            now=now,
            max_log_groups=max_log_groups,
            progress=progress,
        )


async def _diagnose(
    gateway: ExecutionGateway,
    *,
    namespace: str | None,
    selector: str | None,
    scan_id: str,
    now: datetime | None,
    max_log_groups: int,
    progress: Callable[[str], None] | None,
) -> DiagnosisResult:
    if selector:
        try:
            label_matcher(selector)
        except SelectorError as exc:
            raise ValueError(str(exc)) from None
    warnings: list[str] = gateway.input_warnings
    if progress:
        progress("listing objects")
    kinds = [kind for kind in SCAN_KINDS] + (["Secret"] if gateway.secret_metadata else [])
    state = await _list_all(gateway, kinds, namespace=namespace, requester=scan_id, warnings=warnings)
    index = Index.build(state)
    if now is None:
        now = (
            (parse_time(gateway.captured_at) or parse_time(index.newest))
            if gateway.source == "snapshot"
            else None
        ) or datetime.now(UTC)
    ctx = Context(index=index, now=now, warnings=warnings + index.warnings)
    if progress:
        progress(f"reading logs of failing containers ({len(index.pods)} pods listed)")
    await read_logs(gateway, ctx, requester=scan_id, max_groups=max_log_groups)
    if progress:
        progress("analyzing")
    findings, ctx = analyze_state(state, ctx)
    scoped = [f for f in findings if _in_scope(f, ctx, namespace=namespace, selector=selector)]
    return DiagnosisResult(
        cluster=gateway.cluster,
        source=gateway.source,
        findings=order(scoped),
        warnings=[scrub_text(line) for line in ctx.warnings],
        scan_id=scan_id,
        reference_time=now.isoformat().replace("+00:00", "Z"),
    )
