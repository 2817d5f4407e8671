"""Container logs: the current and previous instance of each container, served as ``pods/log``.

Lines come from ``PodLogs`` scenario items and from the timeline (a crash moves the current
instance's lines to ``previous`` at once, like the kubelet keeping the last dead container).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

from aetherius.sim import errors
from aetherius.sim.resources import BY_PATH
from aetherius.sim.store import Obj, Store

_PODS = BY_PATH[("", "v1", "pods")]

_LEADING_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))\s")
_WAITING_TEXT = {
    "ErrImagePull": "trying and failing to pull image",
    "ImagePullBackOff": "trying and failing to pull image",
}


@dataclass
class _Instance:
    lines: list[tuple[datetime, str]] = field(default_factory=list)
    generation: int = 0  # bumped when the instance is replaced (a follower then ends)


@dataclass
class _Container:
    current: _Instance = field(default_factory=_Instance)
    previous: _Instance | None = None


def _line_time(line: str, default: datetime) -> datetime:
    match = _LEADING_TS.match(line)
    if match:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
    return default


class PodLogs:
    """Logs of every container; call from the server's event loop."""

    def __init__(self) -> None:
        self._containers: dict[tuple[str, str, str], _Container] = {}
        self._changed = asyncio.Event()

    def _get(self, namespace: str, pod: str, container: str) -> _Container:
        return self._containers.setdefault((namespace, pod, container), _Container())

    def append(
        self,
        namespace: str,
        pod: str,
        container: str,
        text: str,
        *,
        previous: bool = False,
        at: datetime | None = None,
    ) -> None:
        entry = self._get(namespace, pod, container)
        if previous and entry.previous is None:
            entry.previous = _Instance()
        instance = entry.previous if previous and entry.previous is not None else entry.current
        moment = at or datetime.now(UTC)
        for number, line in enumerate(text.splitlines()):
            instance.lines.append((_line_time(line, moment + timedelta(milliseconds=number)), line))
        self._wake()

    def restart(self, namespace: str, pod: str, container: str) -> None:
        """The container died: its instance becomes previous, the next one starts empty."""
        entry = self._get(namespace, pod, container)
        generation = entry.current.generation + 1
        entry.previous, entry.current = entry.current, _Instance(generation=generation)
        self._wake()

    def has_previous(self, namespace: str, pod: str, container: str) -> bool:
        entry = self._containers.get((namespace, pod, container))
        return entry is not None and entry.previous is not None

    def has_current(self, namespace: str, pod: str, container: str) -> bool:
        entry = self._containers.get((namespace, pod, container))
        return entry is not None and bool(entry.current.lines)

    def lines(
        self, namespace: str, pod: str, container: str, *, previous: bool
    ) -> list[tuple[datetime, str]]:
        entry = self._containers.get((namespace, pod, container))
        if entry is None:
            return []
        instance = entry.previous if previous else entry.current
        return list(instance.lines) if instance is not None else []

    def forget_pod(self, namespace: str, pod: str) -> None:
        for key in [key for key in self._containers if key[:2] == (namespace, pod)]:
            del self._containers[key]
        self._wake()

    def _wake(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _instance(self, namespace: str, pod: str, container: str) -> _Instance:
        return self._get(namespace, pod, container).current


def _format(lines: list[tuple[datetime, str]], *, timestamps: bool) -> bytes:
    if not lines:
        return b""
    if timestamps:
        text = "".join(
            f"{moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z {line}\n"
            for moment, line in lines
        )
    else:
        text = "".join(f"{line}\n" for _, line in lines)
    return text.encode()


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f"invalid {name}: {raw!r}") from None
    if value < 0 or (name == "limitBytes" and value == 0):
        raise errors.bad_request(f"{name}: Invalid value: {value}: must be greater than 0")
    return value


def _waiting(pod: Obj, container: str) -> bool:
    statuses = [
        *((pod.get("status") or {}).get("containerStatuses") or []),
        *((pod.get("status") or {}).get("initContainerStatuses") or []),
    ]
    state = next((s.get("state") or {} for s in statuses if s.get("name") == container), {})
    return "waiting" in state


def _choose_container(request: web.Request, pod: Obj) -> str:
    spec, name = pod.get("spec") or {}, pod["metadata"]["name"]
    containers = [c["name"] for c in spec.get("containers") or []]
    init = [c["name"] for c in spec.get("initContainers") or []]
    wanted = request.query.get("container", "")
    if not wanted:
        if len(containers) == 1:
            return str(containers[0])
        message = (
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        )
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.bad_request(message)
    if wanted not in containers and wanted not in init:
        raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
    return str(wanted)


async def serve_log(request: web.Request, *, logs: PodLogs, pod: Obj, store: Store) -> web.StreamResponse:
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    container = _choose_container(request, pod)
    previous = request.query.get("previous", "") in ("1", "t", "T", "true", "TRUE", "True")
    follow = request.query.get("follow", "") in ("1", "t", "T", "true", "TRUE", "True")
    timestamps = request.query.get("timestamps", "") in ("1", "t", "T", "true", "TRUE", "True")
    tail, limit = _int_param(request, "tailLines"), _int_param(request, "limitBytes")
    since_seconds = _int_param(request, "sinceSeconds")
    if previous and not logs.has_previous(namespace, name, container):
        raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
    if not previous and not logs.has_current(namespace, name, container):
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        state = next((s.get("state") or {} for s in statuses if s.get("name") == container), {})
        waiting = state.get("waiting") or {}
        if waiting.get("reason") and not logs.has_previous(namespace, name, container):
            reason = _WAITING_TEXT.get(waiting["reason"], waiting["reason"])
            raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    # The kubelet serves a waiting container's last terminated instance for a plain request too.
    serve_previous = previous or (
        not logs.has_current(namespace, name, container) and _waiting(pod, container)
    )
    lines = logs.lines(namespace, name, container, previous=serve_previous)
    if since_seconds is not None:
        cutoff = datetime.now(UTC) - timedelta(seconds=since_seconds)
        lines = [entry for entry in lines if entry[0] >= cutoff]
    if tail is not None:
        lines = lines[-tail:] if tail else []
    body = _format(lines, timestamps=timestamps)
    if limit is not None:
        body = body[:limit]
    if not follow or previous:
        return web.Response(body=body, content_type="text/plain")
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = len(body)
    if body:
        await response.write(body)
    instance = logs._instance(namespace, name, container)
    position = len(instance.lines)
    with contextlib.suppress(ConnectionError):
        while limit is None or sent < limit:
            changed = logs._changed
            current = logs._instance(namespace, name, container)
            if current is not instance or store.find(_PODS, namespace, name) is None:
                break
            if len(instance.lines) > position:
                chunk = _format(instance.lines[position:], timestamps=timestamps)
                position = len(instance.lines)
                if limit is not None:
                    chunk = chunk[: limit - sent]
                sent += len(chunk)
                await response.write(chunk)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=5.0)
        await response.write_eof()
    return response
