"""The node agent: the kubelet's pressure and the kernel's records of one node, as Signals.

Three loops share one bounded queue of Signals: the kubelet poll (``poll_interval``), one reader
per kernel log, and the publisher (batches to the bus; while the bus is down it retries with the
one retry delay, and the readers wait on the full queue: back-pressure, nothing dropped). What a
kernel record names is resolved on the node: the OOM victim's pod uid to its namespace/name from
the kubelet's summary, its container id and owner from one GET of the pod (so the Signal groups
with the Watcher's Signals about the same pod and workload).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge

from aetherius.agent.kernel import KernelRecord, RecordParser, describe, load_patterns
from aetherius.agent.kubelet import KubeletClient, KubeletError, Summary
from aetherius.agent.pressure import PressureEvent, PressureTracker, format_amount
from aetherius.agent.reader import LINES, LogFileReader
from aetherius.agent.throttling import ThrottleTracker, parse_cfs
from aetherius.backoff import exponential
from aetherius.bus import BusUnavailable
from aetherius.bus.base import SignalBus
from aetherius.config import Settings
from aetherius.kube import KubeApiError, KubeClient, KubeConnectionError
from aetherius.logs import get_logger
from aetherius.scrub import scrub_text
from aetherius.signals import ObjectRef, Signal, dedup_key

__all__ = ["SIGNALS", "NodeAgent"]

log = get_logger(__name__)

SIGNALS = Counter("aetherius_node_agent_signals_total", "Signals the node agent published", ["reason"])
POLLS = Counter("aetherius_node_agent_kubelet_polls_total", "Kubelet summary polls", ["outcome"])
QUEUED = Gauge("aetherius_node_agent_queue", "Signals waiting to be published")
SOURCE = "node-agent"


class NodeAgent:
    def __init__(
        self,
        *,
        settings: Settings,
        cluster_id: str,
        node_name: str,
        kubelet: KubeletClient,
        bus: SignalBus,
        kube: KubeClient | None = None,
        boot_id: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.cluster_id = cluster_id
        self.node = node_name
        self.kubelet = kubelet
        self.bus = bus
        self.kube = kube
        self.clock = clock  # the trend's time (seconds); a simulated node's timeline in tests
        na = settings.node_agent
        self.tracker = PressureTracker(na)
        self.parser = RecordParser(
            load_patterns(na.patterns_file), boot_id=boot_id or "boot", max_line_bytes=na.max_line_bytes
        )
        self.queue: asyncio.Queue[Signal] = asyncio.Queue(maxsize=na.queue_size)
        self.readers = [
            LogFileReader(path, on_line=self._line, max_line_bytes=na.max_line_bytes)
            for path in na.kernel_logs
        ]
        self.pods_by_uid: dict[str, tuple[str, str]] = {}
        self.last_summary: float | None = None  # monotonic time of the last good poll
        self.kubelet_error = ""
        self.published = 0
        self.started_at = datetime.now(UTC)
        self._tasks: list[asyncio.Task[Any]] = []
        self._occurrence = int(time.time())
        self._full: set[tuple[str, str]] = set()  # claims reported full, until they are not
        self.throttle = ThrottleTracker(ratio=na.throttled_ratio, polls=na.throttled_polls)
        self.cadvisor_error = ""

    # -- the kubelet -----------------------------------------------------------------------

    async def poll_once(self) -> list[PressureEvent]:
        try:
            summary = await self.kubelet.summary()
        except KubeletError as exc:
            POLLS.labels(outcome="failed").inc()
            if str(exc) != self.kubelet_error:
                log.warning("kubelet summary not read", error=str(exc))
            self.kubelet_error = str(exc)
            return []
        POLLS.labels(outcome="ok").inc()
        self.kubelet_error = ""
        self.last_summary = time.monotonic()
        self._remember_pods(summary)
        events = self.tracker.observe(summary, at=self.clock())
        for event in events:
            await self.queue.put(self._pressure_signal(event))
        for signal in self._full_volumes(summary):
            await self.queue.put(signal)
        await self._throttling()
        return events

    async def _throttling(self) -> None:
        """CPU throttling per container, from the kubelet's cAdvisor metrics (never fatal)."""
        try:
            text = await self.kubelet.cadvisor()
        except KubeletError as exc:
            if str(exc) != self.cadvisor_error:
                log.info("kubelet cAdvisor metrics not read", error=str(exc))
            self.cadvisor_error = str(exc)
            return
        self.cadvisor_error = ""
        for event in self.throttle.observe(parse_cfs(text)):
            namespace, pod, container = event.key
            self._occurrence += 1
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            await self.queue.put(
                Signal(
                    cluster_id=self.cluster_id,
                    source=SOURCE,
                    object=ObjectRef(kind="Pod", namespace=namespace, name=pod),
                    container=container,
                    reason="CPUThrottled",
                    message=scrub_text(event.message()),
                    severity="warning" if event.started else "info",
                    dedup_key=dedup_key(self.cluster_id, "cpu-throttled", namespace, pod, container),
                    occurrence=self._occurrence,
                    first_seen=now,
                    last_seen=now,
                    resolved=not event.started,
                    labels={"node": self.node, "throttled": f"{event.ratio:.2f}"},
                )
            )

    def _full_volumes(self, summary: Summary) -> list[Signal]:
        """A PersistentVolumeClaim's file system nearly full (or out of inodes), once per episode:
        the kubelet knows it, the API server never does."""
        limit = self.settings.node_agent.volume_full_percent / 100
        out, full = [], set()
        for pod in summary.pods:
            for volume in pod.volume:
                ref = volume.pvcRef
                if ref is None or not ref.name:
                    continue
                space = (volume.availableBytes or 0) / volume.capacityBytes if volume.capacityBytes else 1.0
                inodes = (volume.inodesFree or 0) / volume.inodes if volume.inodes else 1.0
                if min(space, inodes) > limit:
                    continue
                key = (ref.namespace or pod.podRef.namespace, ref.name)
                full.add(key)
                if key in self._full:
                    continue
                what = "space" if space <= inodes else "inodes"
                left = (
                    f"{space:.1%} of {format_amount(float(volume.capacityBytes or 0), unit='bytes')}"
                    if what == "space"
                    else f"{inodes:.1%} of {volume.inodes} inodes"
                )
                self._occurrence += 1
                now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                out.append(
                    Signal(
                        cluster_id=self.cluster_id,
                        source=SOURCE,
                        object=ObjectRef(kind="PersistentVolumeClaim", namespace=key[0], name=key[1]),
                        reason="VolumeFull",
                        message=scrub_text(
                            f"volume {volume.name} of pod {pod.podRef.namespace}/{pod.podRef.name} "
                            f"(claim {key[1]}) has {left} {what} left; writes will fail when it is full"
                        ),
                        severity="critical" if min(space, inodes) <= limit / 2 else "warning",
                        dedup_key=dedup_key(self.cluster_id, "volume-full", key[0], key[1]),
                        occurrence=self._occurrence,
                        first_seen=now,
                        last_seen=now,
                        labels={"node": self.node, "volume": volume.name, "left": left},
                    )
                )
        self._full = full
        return out

    def _remember_pods(self, summary: Summary) -> None:
        self.pods_by_uid = {
            pod.podRef.uid: (pod.podRef.namespace, pod.podRef.name) for pod in summary.pods if pod.podRef.uid
        }

    def _pressure_signal(self, event: PressureEvent) -> Signal:
        self._occurrence += 1  # one occurrence per change of level
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return Signal(
            cluster_id=self.cluster_id,
            source=SOURCE,
            object=ObjectRef(kind="Node", name=self.node),
            reason="NodePressure",
            message=scrub_text(event.message()),
            severity="info" if event.level == "ok" else event.level,
            dedup_key=dedup_key(self.cluster_id, "node-pressure", self.node, event.signal),
            occurrence=self._occurrence,
            first_seen=now,
            last_seen=now,
            resolved=event.level == "ok",
            labels={
                "signal": event.signal,
                "level": event.level,
                "available": format_amount(event.available, unit=event.unit),
                "threshold": format_amount(event.threshold, unit=event.unit),
                **({"minutes_left": f"{event.minutes_left:.1f}"} if event.minutes_left is not None else {}),
            },
        )

    # -- the kernel ------------------------------------------------------------------------

    async def _line(self, line: str) -> None:
        now = datetime.now(UTC)
        record = self.parser.parse(line, now=now)
        if record is None:
            return
        if record.at is not None and now - record.at > self.settings.node_agent.lookback:
            LINES.labels(outcome="skipped_old").inc()
            return
        LINES.labels(outcome="matched").inc()
        await self.queue.put(await self._kernel_signal(record))

    async def _kernel_signal(self, record: KernelRecord) -> Signal:
        subject = ObjectRef(kind="Node", name=self.node)
        owner: ObjectRef | None = None
        container, labels = "", {k: str(v)[:253] for k, v in describe(record).items()}
        victim = record.victim
        if victim is not None and victim.pod_uid in self.pods_by_uid:
            namespace, name = self.pods_by_uid[victim.pod_uid]
            subject = ObjectRef(kind="Pod", namespace=namespace, name=name, uid=victim.pod_uid)
            owner, container, extra = await self._pod_details(namespace, name, victim.container_id)
            labels.update(extra)
        stamp = (record.at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
        where = f"pod {subject.namespace}/{subject.name}" + (f" container {container}" if container else "")
        prefix = (
            f"{record.pattern.what} ({where}, node {self.node})"
            if subject.kind == "Pod"
            else record.pattern.what
        )
        return Signal(
            cluster_id=self.cluster_id,
            source=SOURCE,
            object=subject,
            owner=owner,
            container=container,
            reason=record.pattern.reason,
            message=scrub_text(f"{prefix}: {record.text}")[:2000],
            severity=record.pattern.severity,
            dedup_key=dedup_key(self.cluster_id, "kernel", self.node, record.record_id),
            first_seen=stamp,
            last_seen=stamp,
            labels={"node": self.node, **labels},
        )

    async def _pod_details(
        self, namespace: str, name: str, container_id: str
    ) -> tuple[ObjectRef | None, str, dict[str, str]]:
        """The pod's controller, the container the id names, and the labels grouping uses."""
        if self.kube is None:
            return None, "", {}
        try:
            pod = await self.kube.get_json(f"/api/v1/namespaces/{namespace}/pods/{name}")
        except (KubeApiError, KubeConnectionError) as exc:
            log.info("OOM victim's pod not read", pod=f"{namespace}/{name}", error=str(exc))
            return None, "", {}
        metadata = pod.get("metadata") or {}
        owner = next(
            (
                ObjectRef(kind=str(ref.get("kind")), name=str(ref.get("name")), namespace=namespace)
                for ref in metadata.get("ownerReferences") or ()
                if isinstance(ref, dict) and ref.get("controller")
            ),
            None,
        )
        container = ""
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            if (
                isinstance(status, dict)
                and container_id
                and str(status.get("containerID", "")).endswith(container_id)
            ):
                container = str(status.get("name") or "")
        labels = metadata.get("labels") or {}
        extra = (
            {"pod-template-hash": str(labels["pod-template-hash"])} if "pod-template-hash" in labels else {}
        )
        return owner, container, extra

    # -- publishing ------------------------------------------------------------------------

    async def _publish_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not (stop.is_set() and self.queue.empty()):
            try:
                first = await asyncio.wait_for(self.queue.get(), timeout=0.5)
            except TimeoutError:
                continue
            batch = [first]
            while not self.queue.empty() and len(batch) < 256:
                batch.append(self.queue.get_nowait())
            QUEUED.set(self.queue.qsize())
            while True:
                try:
                    await self.bus.publish(batch)
                    break
                except BusUnavailable as exc:
                    failures += 1
                    delay = exponential(failures, base=0.5, cap=30.0, jitter=0.2)
                    log.warning("bus unavailable; retrying", error=str(exc), retry_in=round(delay, 2))
                    await asyncio.sleep(delay)
            failures = 0
            self.published += len(batch)
            for signal in batch:
                SIGNALS.labels(reason=signal.reason).inc()

    async def _poll_loop(self, stop: asyncio.Event) -> None:
        interval = self.settings.node_agent.poll_interval.total_seconds()
        while not stop.is_set():
            started = time.monotonic()
            await self.poll_once()
            remaining = interval - (time.monotonic() - started)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=remaining)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: then the readers and the poll end, and what is queued is published."""
        readers_stop = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._poll_loop(readers_stop), name="node-kubelet"),
            *(asyncio.create_task(r.run(readers_stop), name=f"node-kernel-{r.path}") for r in self.readers),
        ]
        publisher = asyncio.create_task(self._publish_loop(readers_stop), name="node-publisher")
        await stop.wait()
        readers_stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await publisher

    @property
    def reader_tasks(self) -> list[asyncio.Task[Any]]:
        """The readers' tasks, in ``readers`` order (empty until ``run`` started them)."""
        return self._tasks[1:]

    def stalled_readers(self) -> Sequence[str]:
        """Readers that have not looked at their file for ``reader_stall`` (or died)."""
        limit = self.settings.node_agent.reader_stall.total_seconds()
        now = time.monotonic()
        out = []
        for reader, task in zip(self.readers, self.reader_tasks, strict=False):
            if task.done():
                out.append(
                    f"{reader.path}: reader stopped ({task.exception() if not task.cancelled() else 'cancelled'})"
                )
            elif now - reader.heartbeat > limit:
                out.append(f"{reader.path}: no progress for {now - reader.heartbeat:.0f}s")
        return out
