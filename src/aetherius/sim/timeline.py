"""The timeline: scenario steps played forward on a virtual clock.

Each step names a time (``at``, a duration from the start), usually a pod, and one action.
High-level actions expand into the kubelet's real sequence of status changes and Events:

================  ==============================================================================
``run``           ``{node}``: scheduled, image pulled, every container started and ready
``schedule``      ``{node}``: bound to a node (Scheduled event), containers ContainerCreating
``start``         ``{container, ready: true, pull: true}``: Pulling/Pulled, Created, Started
``crashloop``     ``{container, reason: OOMKilled|Error, exit_code, run_for: 20s, restarts: 5,
                  logs: "…"}``: starts, writes ``logs``, dies after ``run_for``, waits the kubelet
                  back-off (10 s doubling to 5 min) in CrashLoopBackOff with BackOff Events,
                  restarts (the dead instance's logs become ``--previous``), ``restarts`` times
``crash``         ``{container, reason, exit_code, backoff: 10s}``: one death → CrashLoopBackOff
``restart``       ``{container}``: the next instance starts (restartCount + 1)
``image_pull_error`` ``{container, error: not_found|unauthorized, retries: 4}``: ErrImagePull ⇄
                  ImagePullBackOff with Failed and BackOff ("Back-off pulling image") Events
``config_error``  ``{container, message: 'configmap "x" not found', retries: 4}``:
                  CreateContainerConfigError, Failed "Error: …" Events
``probe_failure`` ``{container, probe: readiness, message, repeat: 6, every: 10s}``: running but
                  not ready, Unhealthy "Readiness probe failed: …" Events
``unschedulable`` ``{message, retries: 3, every: 30s}``: PodScheduled=False, FailedScheduling
``log``           ``{container, text, previous: false}``: append log lines
``event``         ``{reason, message, type, container, component}``: any Event about the pod
``create`` / ``patch`` / ``delete``  ``{object}`` / ``{kind, namespace, name, merge}`` / ``{kind, namespace, name}``
================  ==============================================================================

Durations are numbers (seconds) or strings like ``500ms``, ``20s``, ``2m``. ``advance(s)`` and
``run_to_end()`` drive it in tests without sleeping; ``play(speed=)`` follows the wall clock.
Timestamps written by a step are the wall clock minus how far in the virtual past it ran, so
nothing ever looks like it happened in the future.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aetherius.sim.kubelet import Kubelet, backoff

if TYPE_CHECKING:
    from aetherius.sim.cluster import SimCluster

log = logging.getLogger(__name__)
Step = dict[str, Any]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

_PULL_ERRORS = {
    "not_found": (
        'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": failed to resolve '
        'reference "{ref}": {ref}: not found'
    ),
    "unauthorized": (
        'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": failed to resolve '
        'reference "{ref}": failed to authorize: failed to fetch oauth token: unexpected status from GET '
        "request to https://{registry}/oauth2/token: 401 Unauthorized"
    ),
}


class TimelineError(ValueError):
    """A step that cannot be understood; the message names the step."""


def parse_duration(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise TimelineError(f"not a duration: {value!r} (use 10, '10s', '500ms', '2m')")
    return float(match.group(1)) * _UNITS[match.group(2)]


class Timeline:
    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self.now = 0.0
        self._queue: list[tuple[float, int, str, Callable[[], object]]] = []
        self._seq = itertools.count()
        self._target = 0.0
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self.kubelet = Kubelet(cluster, self.timestamp)
        self.applied = 0

    # -- clock ------------------------------------------------------------------------------------

    def timestamp(self) -> str:
        moment = datetime.now(UTC) - timedelta(seconds=max(0.0, self._target - self.now))
        moment = max(moment, self._last_stamp)
        self._last_stamp = moment
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def end(self) -> float:
        """The virtual time of the last queued action (``now`` when nothing is queued)."""
        return max((entry[0] for entry in self._queue), default=self.now)

    def _at(self, when: float, label: str, action: Callable[[], object]) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), label, action))

    def advance(self, seconds: float) -> int:
        """Move the virtual clock forward, applying every action due; returns how many ran."""
        if seconds < 0:
            raise ValueError("the timeline only moves forward")
        self._target = self.now + seconds
        ran = 0
        previous_clock = self.cluster.store.clock
        self.cluster.store.clock = self.timestamp
        try:
            while self._queue and self._queue[0][0] <= self._target:
                when, _, _label, action = heapq.heappop(self._queue)
                self.now = max(self.now, when)
                action()
                ran += 1
        finally:
            self.cluster.store.clock = previous_clock
            self.now = self._target
        self.applied += ran
        return ran

    def run_to_end(self) -> int:
        return self.advance(max(0.0, self.end - self.now))

    async def play(self, *, speed: float = 1.0, tick: float = 0.25) -> None:
        """Follow the wall clock (``speed`` virtual seconds per second) until cancelled."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            current = time.monotonic()
            try:
                self.advance((current - last) * speed)
            except Exception:  # a bad step must not stop the cluster; it is logged and skipped
                log.exception("sim timeline: a step failed")
            last = current

    # -- steps ------------------------------------------------------------------------------------

    def extend(self, steps: list[Step]) -> None:
        for index, step in enumerate(steps):
            try:
                self.add(step)
            except (KeyError, TypeError, ValueError) as exc:
                raise TimelineError(f"timeline step {index + 1} {step!r}: {exc}") from None

    def add(self, step: Step) -> None:
        """Queue one step (relative to the timeline's start, like the scenario's steps)."""
        step = dict(step)
        at = parse_duration(step.pop("at", 0))
        ref = str(step.pop("pod", ""))
        if len(step) != 1:
            raise TimelineError(f"one action per step, found {sorted(step)}")
        ((action, args),) = step.items()
        args = dict(args or {}) if isinstance(args, dict) else args
        handler = getattr(self, f"_step_{action}", None)
        if handler is None:
            raise TimelineError(f"unknown action {action!r}")
        if ref == "" and action not in ("create", "patch", "delete"):
            raise TimelineError(f"{action} needs a pod: namespace/name")
        handler(at, ref, args)

    def _containers(self, ref: str) -> list[str]:
        return [c["name"] for c in self.kubelet.pod(ref)["spec"].get("containers") or []]

    def _step_run(self, at: float, ref: str, args: Step) -> None:
        self._step_schedule(at, ref, args)

        def start_all() -> None:
            for container in self._containers(ref):
                self._start(ref, container, True, True)

        self._at(at + 2, f"{ref} start", start_all)

    def _step_schedule(self, at: float, ref: str, args: Step) -> None:
        node = str(args["node"])
        self._at(at, f"{ref} schedule", lambda: self.kubelet.schedule(ref, node))

    def _start(self, ref: str, container: str, pull: bool, ready: bool) -> None:
        self.kubelet.pulled(ref, container, cached=not pull)
        self.kubelet.start(ref, container, ready=ready)

    def _step_start(self, at: float, ref: str, args: Step) -> None:
        container, pull, ready = (
            args.get("container"),
            bool(args.get("pull", True)),
            bool(args.get("ready", True)),
        )
        self._at(
            at, f"{ref} start", lambda: self._start(ref, container or self._containers(ref)[0], pull, ready)
        )

    def _step_log(self, at: float, ref: str, args: Step) -> None:
        namespace, _, name = ref.partition("/")
        text, previous = str(args["text"]), bool(args.get("previous", False))

        def append() -> None:
            container = args.get("container") or self._containers(ref)[0]
            self.cluster.logs.append(namespace, name, container, text, previous=previous)

        self._at(at, f"{ref} log", append)

    def _step_crash(self, at: float, ref: str, args: Step) -> None:
        container = args.get("container")
        reason, code = str(args.get("reason", "Error")), int(args.get("exit_code", 1))
        wait = parse_duration(args.get("backoff", 10))

        def crash() -> None:
            name = container or self._containers(ref)[0]
            self.kubelet.crash(ref, name, reason=reason, exit_code=code, backoff_seconds=wait)
            self.kubelet.back_off(ref, name)

        self._at(at, f"{ref} crash", crash)

    def _step_restart(self, at: float, ref: str, args: Step) -> None:
        container = args.get("container")
        self._at(
            at, f"{ref} restart", lambda: self.kubelet.restart(ref, container or self._containers(ref)[0])
        )

    def _step_crashloop(self, at: float, ref: str, args: Step) -> None:
        container = args.get("container")
        reason, code = str(args.get("reason", "Error")), int(args.get("exit_code", 1))
        run_for = parse_duration(args.get("run_for", 20))
        restarts = int(args.get("restarts", 5))
        logs = str(args.get("logs", ""))
        namespace, _, name = ref.partition("/")

        def which() -> str:
            return str(container or self._containers(ref)[0])

        def begin(first: bool) -> None:
            if first:
                self._start(ref, which(), True, True)
            else:
                self.kubelet.restart(ref, which())
            if logs:
                self.cluster.logs.append(namespace, name, which(), logs)

        def die(wait: float) -> None:
            self.kubelet.crash(ref, which(), reason=reason, exit_code=code, backoff_seconds=wait)

        t = at
        for attempt in range(restarts + 1):
            self._at(t, f"{ref} start#{attempt}", functools.partial(begin, attempt == 0))
            t += run_for
            wait = backoff(attempt)
            self._at(
                t,
                f"{ref} crash#{attempt}",
                functools.partial(die, wait),
            )
            # The kubelet re-syncs the pod during the back-off and reports BackOff each time.
            beat = 1.0
            while beat < wait:
                self._at(t + beat, f"{ref} backoff", lambda: self.kubelet.back_off(ref, which()))
                beat += 10.0
            t += wait

    def _step_image_pull_error(self, at: float, ref: str, args: Step) -> None:
        container, kind = args.get("container"), str(args.get("error", "not_found"))
        if kind not in _PULL_ERRORS:
            raise TimelineError(f"error must be one of {sorted(_PULL_ERRORS)}")
        retries = int(args.get("retries", 4))

        def attempt() -> None:
            name = container or self._containers(ref)[0]
            pod = self.kubelet.pod(ref)
            image = self.kubelet._image(pod, name)
            registry = image.split("/")[0] if "/" in image else "registry-1.docker.io"
            ref_full = image if "/" in image else f"docker.io/library/{image}"
            detail = _PULL_ERRORS[kind].format(ref=ref_full, registry=registry)
            self.kubelet.event(pod, reason="Pulling", message=f'Pulling image "{image}"', container=name)
            self.kubelet.event(
                pod,
                reason="Failed",
                message=f'Failed to pull image "{image}": {detail}',
                type="Warning",
                container=name,
            )
            self.kubelet.event(
                pod, reason="Failed", message="Error: ErrImagePull", type="Warning", container=name
            )
            self.kubelet.waiting(ref, name, reason="ErrImagePull", message=detail)

        def back_off() -> None:
            name = container or self._containers(ref)[0]
            pod = self.kubelet.pod(ref)
            image = self.kubelet._image(pod, name)
            message = f'Back-off pulling image "{image}"'
            self.kubelet.event(pod, reason="BackOff", message=message, container=name)
            self.kubelet.event(
                pod, reason="Failed", message="Error: ImagePullBackOff", type="Warning", container=name
            )
            self.kubelet.waiting(ref, name, reason="ImagePullBackOff", message=message)

        t = at
        for number in range(retries + 1):
            self._at(t, f"{ref} pull#{number}", attempt)
            self._at(t + 1, f"{ref} pull-backoff#{number}", back_off)
            t += 1 + backoff(number)

    def _step_config_error(self, at: float, ref: str, args: Step) -> None:
        container, message = args.get("container"), str(args["message"])
        retries = int(args.get("retries", 4))

        def attempt() -> None:
            name = container or self._containers(ref)[0]
            self.kubelet.pulled(ref, name, cached=True)
            self.kubelet.waiting(ref, name, reason="CreateContainerConfigError", message=message)
            pod = self.kubelet.pod(ref)
            self.kubelet.event(
                pod, reason="Failed", message=f"Error: {message}", type="Warning", container=name
            )

        t = at
        for number in range(retries + 1):
            self._at(t, f"{ref} config#{number}", attempt)
            t += backoff(number)

    def _step_probe_failure(self, at: float, ref: str, args: Step) -> None:
        container, probe = args.get("container"), str(args.get("probe", "readiness"))
        message = str(args.get("message", "HTTP probe failed with statuscode: 503"))
        repeat, every = int(args.get("repeat", 6)), parse_duration(args.get("every", 10))
        label = probe.capitalize()

        def first() -> None:
            name = container or self._containers(ref)[0]
            self._start(ref, name, True, False)

        def fail() -> None:
            name = container or self._containers(ref)[0]
            self.kubelet.set_ready(ref, name, False)
            pod = self.kubelet.pod(ref)
            self.kubelet.event(
                pod,
                reason="Unhealthy",
                message=f"{label} probe failed: {message}",
                type="Warning",
                container=name,
            )

        self._at(at, f"{ref} probe-start", first)
        for number in range(repeat):
            self._at(at + 5 + number * every, f"{ref} probe#{number}", fail)

    def _step_unschedulable(self, at: float, ref: str, args: Step) -> None:
        message = str(args.get("message", "0/3 nodes are available: 3 Insufficient memory."))
        retries, every = int(args.get("retries", 3)), parse_duration(args.get("every", 30))
        for number in range(retries + 1):
            self._at(
                at + number * every,
                f"{ref} unschedulable#{number}",
                lambda: self.kubelet.unschedulable(ref, message),
            )

    def _step_event(self, at: float, ref: str, args: Step) -> None:
        def emit() -> None:
            self.kubelet.event(
                self.kubelet.pod(ref),
                reason=str(args["reason"]),
                message=str(args.get("message", "")),
                type=str(args.get("type", "Normal")),
                container=args.get("container"),
                component=str(args.get("component", "kubelet")),
            )

        self._at(at, f"{ref} event", emit)

    def _step_create(self, at: float, ref: str, args: Step) -> None:
        obj = dict(args.get("object") or args)
        self._at(at, "create", lambda: self.cluster.create(obj))

    def _step_patch(self, at: float, ref: str, args: Step) -> None:
        kind, namespace, name = str(args["kind"]), str(args.get("namespace", "")), str(args["name"])
        merge = dict(args["merge"])
        self._at(at, "patch", lambda: self.cluster.patch(kind, namespace, name, merge))

    def _step_delete(self, at: float, ref: str, args: Step) -> None:
        kind, namespace, name = str(args["kind"]), str(args.get("namespace", "")), str(args["name"])
        self._at(at, "delete", lambda: self.cluster.delete(kind, namespace, name))
