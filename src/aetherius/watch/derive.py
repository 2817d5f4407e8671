"""From Events and Pod status transitions to Signals.

The kubelet never writes ``OOMKilled`` or ``CrashLoopBackOff`` as Event reasons (it writes
``BackOff``/``Failed``, and "Back-off pulling image" is type Normal): those live in the Pod's
container statuses, so Pods are watched too and their *transitions* become Signals.

Occurrences are numbered from the objects themselves, never from process state, so that the
same observation gets the same ``msg_id`` after a relist or a restart (JetStream drops it):

- an Event: its ``count`` (or ``series.count``); a repeat that raises the count is a new occurrence;
- a container termination: the restart it caused (``restartCount`` once restarted, one more while
  the container is still terminated), so "terminated" and "restarted after it" are one occurrence;
- a waiting reason (CrashLoopBackOff, ImagePullBackOff…): ``restartCount + 1``, so the
  ErrImagePull ⇄ ImagePullBackOff flapping of one pull failure is one Signal per reason;
- Evicted, Unschedulable, SchedulingGated: once per pod.

A pod that had failures and becomes healthy (Ready, every container ready, none waiting) gets
one ``resolved=True`` Signal per failure still open, with the failure's reason, object and owner
(the orchestrator resolves the incident by those) and the dedup key of the failure's family
with a ``resolved`` suffix, numbered by the failure's occurrence: a later failure of the same
container (a higher restart count) and its recovery get new ids, a relist gets the same ones.

Memory per pod is its owner, the msg ids of its current problems and its failures not yet
resolved (usually none): enough to tell a transition from a repeat, nothing like an object
cache; no Event is remembered at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from hashlib import blake2b as _blake2b
from typing import Any

from aetherius.config import SEVERITIES, WatcherSettings
from aetherius.logs import get_logger
from aetherius.names import REJECTED_NAMES, name_problem, namespace_problem
from aetherius.ops.metrics import SIGNALS_DERIVED, SIGNALS_FILTERED
from aetherius.scrub import scrub_text
from aetherius.signals import SEVERITY_RANK, ObjectRef, Signal, dedup_key
from aetherius.watch.model import ContainerStatus, KubeEvent, OwnerRef, Pod, WatchChange

MAX_MESSAGE = 1024
MAX_REASON = 128  # the store's column; an Event's reason is free text of whoever created it
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")

log = get_logger(__name__)

WAITING_REASONS: dict[str, str] = {
    "CrashLoopBackOff": "critical",
    "ImagePullBackOff": "warning",
    "ErrImagePull": "warning",
    "InvalidImageName": "warning",
    "ErrImageNeverPull": "warning",
    "CreateContainerConfigError": "warning",
    "CreateContainerError": "warning",
    "RunContainerError": "warning",
    "PreStartHookError": "warning",
    "PostStartHookError": "warning",
}
TERMINATED_SEVERITY: dict[str, str] = {"OOMKilled": "critical"}  # any other failure: warning
CRITICAL_EVENT_REASONS = frozenset({"OOMKilling", "SystemOOM", "Evicted", "NodeNotReady", "Rebooted"})
POD_SEVERITY = {"Evicted": "warning", "Unschedulable": "warning", "SchedulingGated": "info"}


_DERIVED: dict[tuple[str, str], Any] = {}


def _count_derived(source: str, reason: str, amount: int = 1) -> None:
    counter = _DERIVED.get((source, reason))
    if counter is None:
        counter = _DERIVED[(source, reason)] = SIGNALS_DERIVED.labels(source=source, reason=reason)
    counter.inc(amount)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clip(text: str) -> str:
    """A message as a Signal carries it: scrubbed of credentials first, then cut to size.

    NB: this is where a cluster's text enters a Signal (Event messages, container waiting and
    termination messages, conditions): scrubbed once here, it is clean in the bus, the store, the
    API, the dashboard and notifications. Scrubbed before the cut, so a cut cannot leave half a
    token that no rule recognises.
    """
    text = scrub_text(text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def owner_of(
    *, owners: list[OwnerRef] | None, labels: dict[str, str] | None, namespace: str
) -> ObjectRef | None:
    """The pod's controller; a ReplicaSet is named by its Deployment when that is certain.

    NB: a Deployment's ReplicaSet is ``<deployment>-<pod-template-hash>`` and its pods carry the
    hash label, so stripping the suffix is exact; without the label we keep the ReplicaSet.
    """
    if not owners:
        return None
    ref = next((o for o in owners if o.controller), owners[0])
    if ref.kind == "ReplicaSet" and labels:
        template_hash = labels.get("pod-template-hash", "")
        if template_hash and ref.name.endswith("-" + template_hash):
            return ObjectRef(kind="Deployment", name=ref.name[: -len(template_hash) - 1], namespace=namespace)
    return ObjectRef(kind=ref.kind, name=ref.name, namespace=namespace, uid=ref.uid)


class SignalFilter:
    """``watcher.yaml``'s filters, applied to Signals; every rejection is counted by reason."""

    def __init__(self, settings: WatcherSettings) -> None:
        self.event_types = frozenset(settings.event_types)
        self.reasons = frozenset(settings.reason_filters)
        self.min_rank = SEVERITY_RANK[settings.min_severity]
        self.narrowed = bool(self.reasons) or self.min_rank > 0  # False: ``keep`` keeps everything
        self.filtered = 0

    def keep(self, *, reason: str, severity: str) -> bool:
        if self.reasons and reason not in self.reasons:
            self.reject("reason", reason)
            return False
        if SEVERITY_RANK[severity] < self.min_rank:
            self.reject("min_severity", reason)
            return False
        return True

    def reject(self, name: str, reason: str) -> None:
        self.filtered += 1
        SIGNALS_FILTERED.labels(filter=name, reason=reason).inc()


class Deriver:
    """Turns decoded Events and Pods into Signals for one cluster."""

    def __init__(self, *, cluster_id: str, settings: WatcherSettings | None = None) -> None:
        self.cluster_id = cluster_id
        self.filter = SignalFilter(settings or WatcherSettings())
        self._event_key_prefix = f"{cluster_id}\x1fevent\x1f"  # dedup_key(cluster_id, "event", …)
        # pod uid -> (namespace, owner, msg ids of its current problems, its unresolved failures)
        self._pods: dict[str, tuple[str, ObjectRef | None, tuple[str, ...], tuple[Signal, ...]]] = {}
        self._listed: dict[str | None, set[str]] = {}
        assert set(POD_SEVERITY.values()) <= set(SEVERITIES)

    # -- Events -----------------------------------------------------------------------------

    def from_event(self, event: KubeEvent, *, watch_type: str = "ADDED") -> Signal | None:
        signal = self._event_signal(event, watch_type)
        if signal is not None:
            _count_derived("event", signal.reason)
        return signal

    def from_events(self, changes: Iterable[WatchChange]) -> list[Signal]:
        """The Signals of a chunk of Event watch changes, in order (derived counted once per reason)."""
        out: list[Signal] = []
        tally: dict[str, int] = {}
        derive = self._event_signal
        for change in changes:
            signal = derive(change.object, change.type)
            if signal is not None:
                out.append(signal)
                tally[signal.reason] = tally.get(signal.reason, 0) + 1
        for reason, amount in tally.items():
            _count_derived("event", reason, amount)
        return out

    def _event_signal(self, event: KubeEvent, watch_type: str) -> Signal | None:
        """One Event's Signal (``from_events`` calls this per event: kept free of calls that
        are not needed; ``dedup_key`` is computed inline, the same digest)."""
        if watch_type == "DELETED":
            return None  # an Event expiring (TTL) is not news
        reason = event.reason or ""
        event_type = event.type or "Normal"
        filters = self.filter
        if event_type not in filters.event_types:
            filters.reject("event_type", reason)
            return None
        if event_type == "Warning":
            severity = "critical" if reason in CRITICAL_EVENT_REASONS else "warning"
        else:
            severity = "info"
        if filters.narrowed and not filters.keep(reason=reason, severity=severity):
            return None
        meta, involved, series = event.metadata, event.involvedObject, event.series
        namespace = involved.namespace or meta.namespace
        # NB: involvedObject is free text for anyone who may create Events: a name no object can
        # have is dropped here, counted, and never becomes a Signal (nor a read of that path).
        if (
            not _KIND.fullmatch(involved.kind)
            or name_problem(involved.kind, involved.name)
            or namespace_problem(namespace)
        ):
            filters.reject("invalid_name", "")
            REJECTED_NAMES.labels(entry="watcher").inc()
            log.warning(
                "event about an impossible object dropped",
                event_name=f"{meta.namespace}/{meta.name}"[:300],
                kind=involved.kind[:64],
                name=involved.name[:300],
                namespace=namespace[:300],
            )
            return None
        count = event.count or 0
        if series is not None and series.count > count:
            count = series.count
        if count < 1:
            count = 1
        first = event.firstTimestamp or event.eventTime or ""
        last = event.lastTimestamp or (series.lastObservedTime if series else None) or first
        owner = None
        if involved.uid and involved.kind == "Pod":
            memo = self._pods.get(involved.uid)
            owner = memo[1] if memo else None
        message = event.message or ""
        field_path = involved.fieldPath
        return Signal(
            cluster_id=self.cluster_id,
            source="event",
            object=ObjectRef(
                kind=involved.kind, name=involved.name, namespace=namespace, uid=involved.uid[:64]
            ),
            owner=owner,
            reason=reason if len(reason) <= MAX_REASON else reason[:MAX_REASON],
            message=_clip(message),
            severity=severity,
            dedup_key=_blake2b(
                f"{self._event_key_prefix}{meta.namespace}\x1f{meta.uid or meta.name}".encode(),
                digest_size=12,
            ).hexdigest(),
            occurrence=count,
            count=count,
            first_seen=first,
            last_seen=last,
            container=_container_of(field_path) if field_path else "",
            resource_version=meta.resourceVersion,
        )

    # -- Pods -------------------------------------------------------------------------------

    def begin_relist(self, namespace: str | None) -> None:
        """A full list of ``namespace`` (None: all) follows; pods missing from it were deleted
        while we were not watching, so their memory goes at ``end_relist``."""
        self._listed[namespace] = set()

    def end_relist(self, namespace: str | None) -> None:
        listed = self._listed.pop(namespace, None)
        if listed is None:
            return
        gone = [
            uid
            for uid, (ns, _, _, _) in self._pods.items()
            if uid not in listed and (namespace is None or ns == namespace)
        ]
        for uid in gone:
            del self._pods[uid]

    def from_pods(self, changes: Iterable[WatchChange]) -> list[Signal]:
        """The Signals of a chunk of Pod watch changes, in order."""
        out: list[Signal] = []
        for change in changes:
            out.extend(self.from_pod(change.object, watch_type=change.type))
        return out

    def from_pod(self, pod: Pod, *, watch_type: str = "ADDED") -> list[Signal]:
        meta = pod.metadata
        if watch_type == "DELETED":
            self._pods.pop(meta.uid, None)
            return []
        for listed in self._listed.values():
            listed.add(meta.uid)
        owner = owner_of(owners=meta.ownerReferences, labels=meta.labels, namespace=meta.namespace)
        previous = self._pods.get(meta.uid)
        seen_before, still_open = (previous[2], previous[3]) if previous else ((), ())
        candidates = list(self._pod_problems(pod, owner))
        out: list[Signal] = []
        for signal in candidates:
            if signal.msg_id in seen_before:
                continue  # the same problem, still there: not a transition
            if self.filter.keep(reason=signal.reason, severity=signal.severity):
                _count_derived("pod", signal.reason)
                out.append(signal)
        opened = (*still_open, *out)
        if opened and _healthy(pod):
            recovered = [self._resolved(pod, owner, failure) for failure in opened]
            for signal in recovered:
                _count_derived("pod", signal.reason)
            out.extend(recovered)
            opened = ()
        self._pods[meta.uid] = (meta.namespace, owner, tuple(s.msg_id for s in candidates), opened)
        return out

    def _resolved(self, pod: Pod, owner: ObjectRef | None, failure: Signal) -> Signal:
        meta, stamp = pod.metadata, _now()
        return Signal(
            cluster_id=self.cluster_id,
            source="pod",
            object=failure.object,
            owner=owner or failure.owner,
            reason=failure.reason,
            message=f"pod {meta.name} is Ready again: {failure.reason} cleared",
            severity="info",
            dedup_key=f"{failure.dedup_key}.resolved",
            occurrence=failure.occurrence,
            count=failure.count,
            first_seen=failure.first_seen,
            last_seen=stamp,
            container=failure.container,
            resolved=True,
            resource_version=meta.resourceVersion,
        )

    def _pod_problems(self, pod: Pod, owner: ObjectRef | None) -> Iterator[Signal]:
        status = pod.status
        if status.reason == "Evicted":
            yield self._pod_signal(pod, owner, reason="Evicted", message=status.message, occurrence=1)
        for condition in status.conditions or ():
            if (
                condition.type == "PodScheduled"
                and condition.status == "False"
                and condition.reason in ("Unschedulable", "SchedulingGated")
            ):
                yield self._pod_signal(
                    pod,
                    owner,
                    reason=condition.reason,
                    message=condition.message,
                    occurrence=1,
                    seen=condition.lastTransitionTime or "",
                )
        for statuses in (status.initContainerStatuses, status.containerStatuses):
            for container in statuses or ():
                yield from self._container_problems(pod, owner, container)

    def _container_problems(self, pod: Pod, owner: ObjectRef | None, cs: ContainerStatus) -> Iterator[Signal]:
        restarts = cs.restartCount
        waiting = cs.state.waiting
        if waiting is not None and waiting.reason in WAITING_REASONS:
            yield self._pod_signal(
                pod,
                owner,
                reason=waiting.reason,
                message=waiting.message or f"container {cs.name} is waiting: {waiting.reason}",
                occurrence=restarts + 1,
                container=cs.name,
                severity=WAITING_REASONS[waiting.reason],
            )
        for terminated, occurrence in (
            (cs.state.terminated, restarts + 1),
            (cs.lastState.terminated, restarts),
        ):
            if terminated is None or occurrence < 1:
                continue
            failed = terminated.reason == "OOMKilled" or terminated.exitCode != 0
            if not failed:
                continue
            reason = terminated.reason or "Error"
            detail = f": {terminated.message.strip()}" if terminated.message.strip() else ""
            yield self._pod_signal(
                pod,
                owner,
                reason=reason,
                message=_clip(
                    f"container {cs.name} terminated with {reason} (exit code {terminated.exitCode}"
                    f"{f', signal {terminated.signal}' if terminated.signal else ''}), "
                    f"restart count {restarts}{detail}"
                ),
                occurrence=occurrence,
                container=cs.name,
                severity=TERMINATED_SEVERITY.get(reason, "warning"),
                seen=terminated.finishedAt or "",
                first=terminated.startedAt or "",
            )

    def _pod_signal(
        self,
        pod: Pod,
        owner: ObjectRef | None,
        *,
        reason: str,
        message: str,
        occurrence: int,
        container: str = "",
        severity: str | None = None,
        seen: str = "",
        first: str = "",
    ) -> Signal:
        meta = pod.metadata
        stamp = seen or _now()
        return Signal(
            cluster_id=self.cluster_id,
            source="pod",
            object=ObjectRef(kind="Pod", name=meta.name, namespace=meta.namespace, uid=meta.uid),
            owner=owner,
            reason=reason,
            message=_clip(message),
            severity=severity or POD_SEVERITY[reason],
            dedup_key=dedup_key(self.cluster_id, "pod", meta.namespace, meta.uid, container, reason),
            occurrence=occurrence,
            count=occurrence,
            first_seen=first or stamp,
            last_seen=stamp,
            container=container,
            resource_version=meta.resourceVersion,
        )

    @property
    def pods_remembered(self) -> int:
        return len(self._pods)


def _healthy(pod: Pod) -> bool:
    """Ready, every container ready and none waiting: what "recovered" means for a pod."""
    status = pod.status
    if status.phase != "Running":
        return False
    if not any(c.type == "Ready" and c.status == "True" for c in status.conditions or ()):
        return False
    return all(cs.ready and cs.state.waiting is None for cs in status.containerStatuses or ())


def _container_of(field_path: str) -> str:
    """``spec.containers{app}`` → ``app`` (the kubelet names the container this way)."""
    start = field_path.find("{")
    if start < 0 or not field_path.endswith("}"):
        return ""
    return field_path[start + 1 : -1]
