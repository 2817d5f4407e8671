"""How every long-running role runs: until asked to stop, between its probes.

A role (the watcher, the edge agent, the orchestrator…) is stopped by SIGTERM, which is how
Kubernetes ends a pod, or SIGINT from a terminal; ``stop_on_signals`` turns both into one event.
``serve`` is the shape the watcher and the edge agent share: probes up first (so a role still
waiting for its bus reports "not ready" instead of nothing), then the service, one log line with
where its probes are, and a wait until the service ends on its own (a failure: exit 1) or is
asked to stop (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from aetherius.logs import get_logger
from aetherius.ops.health import HealthServer
from aetherius.ops.metrics import MetricsServer

log = get_logger(__name__)


class StartupError(Exception):
    """A role cannot start (no credentials, no cluster id, a bad token…): the message is one
    line for a person, and the command exits 1 without a traceback."""


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> Any: ...

    async def wait(self) -> None:
        """Return when the service ended by itself (its work failed for good)."""


@contextlib.contextmanager
def stop_on_signals(*, duration: float | None = None) -> Iterator[asyncio.Event]:
    """An event set by SIGTERM, SIGINT or, with ``duration``, that many seconds; the handlers
    are removed again on exit (NB: where a loop cannot install them, only ``duration`` sets it)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    timer = loop.call_later(duration, stop.set) if duration is not None else None
    try:
        yield stop
    finally:
        if timer is not None:
            timer.cancel()
        for signum in installed:
            loop.remove_signal_handler(signum)


async def serve(
    service: Service,
    *,
    stop: asyncio.Event,
    health: HealthServer,
    metrics: MetricsServer,
    announce: str,
    ready_file: str | None = None,
    before: Callable[[], Awaitable[bool]] | None = None,
    **fields: object,
) -> bool:
    """Run ``service`` until it ends by itself or ``stop`` is set; True when it ended by itself.

    ``before`` runs once the probes serve (waiting for a bus, say); False from it means ``stop``
    came first, and the service is never started. ``announce`` is the log line once it runs,
    with ``fields`` and the probes' ports; ``ready_file`` receives "<health port> <metrics port>".
    """
    await health.start()
    await metrics.start()
    try:
        if before is not None and not await before():
            return False
        await service.start()
        log.info(announce, health_port=health.port, metrics_port=metrics.port, **fields)
        if ready_file:
            Path(ready_file).write_text(f"{health.port} {metrics.port}\n", encoding="utf-8")  # noqa: ASYNC240
        ended = asyncio.create_task(service.wait())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({ended, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            stopped.cancel()
        failed = ended.done() and not ended.cancelled() and not stop.is_set()
        await service.stop()
        return failed
    finally:
        await metrics.stop()
        await health.stop()
