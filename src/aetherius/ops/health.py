"""``/health/live`` and ``/health/ready`` for every role, each a set of named checks.

A role registers named checks: readiness checks (its dependencies answer, its initial work is
done) and liveness checks (it is making progress; a failed liveness probe restarts the pod, so
only a stuck process should fail it). Each answer is JSON::

    {"healthy": true, "checks": {"api_server": {"healthy": true, "duration_ms": 3.1, "message": "v1.31.0"}}}

with status 200 when every check passes, 503 otherwise. A check that raises or exceeds its
timeout is reported unhealthy with the error, never as a 500.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from aetherius.config import HealthSettings
from aetherius.kube.client import KubeApiError, KubeClient, KubeConnectionError
from aetherius.kube.credentials import in_cluster_available, pod_namespace


@dataclass(frozen=True)
class CheckResult:
    healthy: bool
    message: str = ""


Check = Callable[[], Awaitable[CheckResult]]


class HealthServer:
    def __init__(
        self, settings: HealthSettings, *, host: str = "0.0.0.0", check_timeout: float = 5.0
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = settings.port
        self.check_timeout = check_timeout
        self.readiness: dict[str, Check] = {}
        self.liveness: dict[str, Check] = {}
        self._runner: web.AppRunner | None = None

    def add_readiness(self, name: str, check: Check) -> None:
        self.readiness[name] = check

    def add_liveness(self, name: str, check: Check) -> None:
        self.liveness[name] = check

    async def _run_check(self, check: Check) -> tuple[CheckResult, float]:
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(check(), timeout=self.check_timeout)
        except TimeoutError:
            result = CheckResult(False, f"no answer within {self.check_timeout:g}s")
        except Exception as exc:  # a broken check is an unhealthy check, not a 500
            result = CheckResult(False, f"{type(exc).__name__}: {exc}")
        return result, (time.perf_counter() - started) * 1000

    async def evaluate(self, checks: dict[str, Check]) -> tuple[bool, dict[str, object]]:
        names = list(checks)
        results = await asyncio.gather(*(self._run_check(checks[name]) for name in names))
        body: dict[str, object] = {}
        healthy = True
        for name, (result, duration_ms) in zip(names, results, strict=True):
            healthy = healthy and result.healthy
            body[name] = {
                "healthy": result.healthy,
                "duration_ms": round(duration_ms, 2),
                "message": result.message,
            }
        return healthy, body

    async def _respond(self, checks: dict[str, Check]) -> web.Response:
        healthy, body = await self.evaluate(checks)
        return web.json_response({"healthy": healthy, "checks": body}, status=200 if healthy else 503)

    async def _live(self, _request: web.Request) -> web.Response:
        return await self._respond(self.liveness)

    async def _ready(self, _request: web.Request) -> web.Response:
        return await self._respond(self.readiness)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(self.settings.liveness_path, self._live)
        app.router.add_get(self.settings.readiness_path, self._ready)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.settings.port).start()
        for address in self._runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def api_server_check(client: KubeClient) -> Check:
    """The API server answers ``/version``."""

    async def check() -> CheckResult:
        try:
            version = await client.get_json("/version")
        except (KubeApiError, KubeConnectionError) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, str(version.get("gitVersion") or "answered"))

    return check


def self_pod_check(client: KubeClient) -> Check:
    """Our own pod is Running. Outside a pod there is nothing to
    check, and the message says so rather than pretending."""

    async def check() -> CheckResult:
        name = os.environ.get("HOSTNAME", "")
        if not in_cluster_available():
            return CheckResult(True, "not running in a pod: nothing to check")
        if not name:
            return CheckResult(False, "HOSTNAME not set")
        try:
            pod = await client.get_json(f"/api/v1/namespaces/{pod_namespace()}/pods/{name}")
        except (KubeApiError, KubeConnectionError) as exc:
            return CheckResult(False, str(exc))
        phase = str((pod.get("status") or {}).get("phase") or "Unknown")
        return CheckResult(phase == "Running", f"pod phase: {phase}")

    return check


def flag_check(predicate: Callable[[], bool], *, ok: str, failing: str | Callable[[], str]) -> Check:
    """A check over in-process state (bus connected, initial list done, progress made)."""

    async def check() -> CheckResult:
        if predicate():
            return CheckResult(True, ok)
        return CheckResult(False, failing() if callable(failing) else failing)

    return check
