"""``SimCluster``: the simulated cluster as a Python object, serving the API on loopback."""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from aetherius.sim import views
from aetherius.sim.faults import Faults
from aetherius.sim.podlogs import PodLogs
from aetherius.sim.preload import PreloadResult, preload_events
from aetherius.sim.rbac import DEFAULT_TOKEN, Rbac, Rule
from aetherius.sim.resources import BY_PATH, RESOURCES, ResourceType, resource_for
from aetherius.sim.scenario import Scenario, load_scenario
from aetherius.sim.server import ApiServer, SentResponse
from aetherius.sim.store import LedgerEntry, Obj, Store
from aetherius.sim.timeline import Timeline

_BY_PLURAL = {rt.qualified: rt for rt in RESOURCES} | {rt.plural: rt for rt in reversed(RESOURCES)}


def _copy(obj: Obj) -> Obj:
    return orjson.loads(orjson.dumps(obj))  # type: ignore[no-any-return]


def resolve_kind(kind: str, api_version: str | None = None) -> ResourceType:
    """``"Pod"``, ``"pods"``, ``"deployments.apps"`` or (kind, apiVersion) to a resource type."""
    if kind in _BY_PLURAL:
        return _BY_PLURAL[kind]
    return resource_for(kind, api_version)


class SimCluster:
    """A Kubernetes API server on 127.0.0.1 over an in-memory cluster.

    Every method is synchronous and must be called from the event loop the cluster runs on;
    from another thread use ``SimCluster.start_in_thread`` and its handle.
    """

    def __init__(
        self,
        scenario: str | Path | Scenario | None = None,
        *,
        history_size: int = 10_000,
        bookmark_interval: float = 1.0,
        port: int = 0,
        host: str = "127.0.0.1",
        speed: float | None = None,
    ) -> None:
        self.store = Store(history_size=history_size)
        self.logs = PodLogs()
        self.faults = Faults(wake=self.store.notify, _expire_snapshots=self.store.expire_snapshots)
        self.timeline = Timeline(self)
        self.rbac = Rbac()
        self._scenario = scenario
        self._server = ApiServer(
            store=self.store,
            faults=self.faults,
            logs=self.logs,
            bookmark_interval=bookmark_interval,
            admin=self._admin,
            rbac=self.rbac,
        )
        self._host, self._port = host, port
        self._speed = speed
        self._runner: web.AppRunner | None = None
        self._player: asyncio.Task[None] | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> SimCluster:
        if self._scenario is not None:
            scenario = (
                self._scenario if isinstance(self._scenario, Scenario) else load_scenario(self._scenario)
            )
            self.load(scenario)
        self._runner = web.AppRunner(self._server.build_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self._port
        self._server.server_address = f"{self._host}:{self.port}"
        if self._speed is not None:
            self._player = asyncio.create_task(self.timeline.play(speed=self._speed))
        return self

    async def stop(self) -> None:
        if self._player is not None:
            self._player.cancel()
            await asyncio.gather(self._player, return_exceptions=True)
            self._player = None
        self.faults.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimCluster:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def write_kubeconfig(
        self, path: str | Path, *, namespace: str = "default", token: str = DEFAULT_TOKEN
    ) -> Path:
        return write_kubeconfig(path, url=self.url, namespace=namespace, token=token)

    def grant(self, token: str, rules: builtins.list[Rule], *, namespace: str | None = None) -> None:
        """Give ``token``'s user these RBAC rules (what a ``SelfSubjectRulesReview`` answers)."""
        self.rbac.grant(token, rules, namespace=namespace)

    # -- state ---------------------------------------------------------------------------------

    def load(self, scenario: Scenario) -> None:
        """Create a scenario's objects and logs, and queue its timeline.

        Objects without a creationTimestamp are dated as far back as the timeline reaches, so
        that what the timeline writes (even fast-forwarded) never predates what it is about.
        """
        self.timeline.extend(scenario.timeline)
        lookback = max(0.0, self.timeline.end - self.timeline.now)
        born = (datetime.now(UTC) - timedelta(seconds=lookback)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for obj in scenario.objects:
            rt = resolve_kind(obj["kind"], obj.get("apiVersion"))
            self.store.create(views.storage_type(rt), views.to_storage(rt, obj), created=born)
        for item in scenario.logs:
            meta = item.get("metadata") or {}
            self.logs.append(
                meta.get("namespace", "default"),
                meta.get("name", ""),
                str(item.get("container", "")),
                str(item.get("text", "")),
                previous=bool(item.get("previous", False)),
            )

    @property
    def resource_version(self) -> int:
        return self.store.resource_version

    @property
    def ledger(self) -> list[LedgerEntry]:
        return self.store.ledger

    def create(self, obj: Obj) -> Obj:
        rt = resolve_kind(obj.get("kind", ""), obj.get("apiVersion"))
        created = self.store.create(views.storage_type(rt), views.to_storage(rt, obj))
        return _copy(views.from_storage(rt, created))

    def update(self, obj: Obj) -> Obj:
        rt = resolve_kind(obj.get("kind", ""), obj.get("apiVersion"))
        updated = self.store.update(views.storage_type(rt), views.to_storage(rt, obj))
        return _copy(views.from_storage(rt, updated))

    def patch(self, kind: str, namespace: str, name: str, patch: Obj) -> Obj:
        rt = resolve_kind(kind)
        if rt.storage:
            patch = views.patch_to_storage(rt, patch)
        return _copy(views.from_storage(rt, self.store.patch(views.storage_type(rt), namespace, name, patch)))

    def delete(self, kind: str, namespace: str, name: str) -> Obj:
        rt = resolve_kind(kind)
        deleted = self.store.delete(views.storage_type(rt), namespace, name)
        if rt.qualified == "pods":
            self.logs.forget_pod(namespace, name)
        return _copy(views.from_storage(rt, deleted))

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        """The object (a copy); raises ``ApiError`` 404 when it does not exist."""
        rt = resolve_kind(kind)
        return _copy(views.from_storage(rt, self.store.get(views.storage_type(rt), namespace, name)))

    def find(self, kind: str, namespace: str, name: str) -> Obj | None:
        rt = resolve_kind(kind)
        found = self.store.find(views.storage_type(rt), namespace, name)
        return None if found is None else _copy(views.from_storage(rt, found))

    def list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        rt = resolve_kind(kind)
        return [_copy(views.from_storage(rt, obj)) for obj in self.store.objects(rt, namespace)]

    def add_logs(
        self, namespace: str, pod: str, container: str, text: str, *, previous: bool = False
    ) -> None:
        self.logs.append(namespace, pod, container, text, previous=previous)

    def record_responses(self, path_prefix: str) -> builtins.list[SentResponse]:
        """Keep every response body sent under ``path_prefix`` from now on (a live list)."""
        return self._server.record_responses(path_prefix)

    def preload_events(self, n: int, **kwargs: Any) -> PreloadResult:
        """Bulk-insert ``n`` watch events for benchmarks (see ``aetherius.sim.preload``)."""
        return preload_events(self.store, n, **kwargs)

    def _admin(self, action: str, kwargs: dict[str, Any]) -> Any:
        if action == "advance":
            return self.timeline.advance(float(kwargs["seconds"]))
        if action == "run_to_end":
            return self.timeline.run_to_end()
        raise KeyError(action)

    # -- threads -------------------------------------------------------------------------------

    @classmethod
    def start_in_thread(cls, scenario: str | Path | Scenario | None = None, **kwargs: Any) -> SimHandle:
        """Run a cluster on its own event loop in a daemon thread (for synchronous tests)."""
        return SimHandle(cls(scenario, **kwargs))


class _LoopProxy:
    """Calls attributes of ``target`` on the cluster's loop and waits for the result."""

    def __init__(self, target: Any, call: Callable[..., Any]) -> None:
        self._target, self._call = target, call

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return self._call(lambda: getattr(self._target, name))
        return lambda *args, **kwargs: self._call(lambda: attribute(*args, **kwargs))


class SimHandle:
    """A ``SimCluster`` on a background thread; every call is marshalled onto its loop."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self._loop = asyncio.new_event_loop()
        started: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(started,), name="aetherius-sim", daemon=True)
        self._thread.start()
        started.result(timeout=30)
        self.faults: Any = _LoopProxy(cluster.faults, self.call)
        self.timeline: Any = _LoopProxy(cluster.timeline, self.call)
        self.sim: Any = _LoopProxy(cluster, self.call)

    def _run(self, started: Future[None]) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.cluster.start())
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        self._loop.run_forever()

    def call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=60)

    @property
    def url(self) -> str:
        return self.cluster.url

    def write_kubeconfig(
        self, path: str | Path, *, namespace: str = "default", token: str = DEFAULT_TOKEN
    ) -> Path:
        return self.cluster.write_kubeconfig(path, namespace=namespace, token=token)

    @property
    def ledger(self) -> list[LedgerEntry]:
        return list(self.call(lambda: list(self.cluster.ledger)))

    @property
    def resource_version(self) -> int:
        return int(self.call(lambda: self.cluster.resource_version))

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.cluster.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_kubeconfig(
    path: str | Path, *, url: str, namespace: str = "default", token: str = DEFAULT_TOKEN
) -> Path:
    """A kubeconfig with one cluster/user/context pointing at ``url`` (token auth)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aetherius-sim", "cluster": {"server": url}}],
        "users": [{"name": "aetherius-sim", "user": {"token": token}}],
        "contexts": [
            {
                "name": "aetherius-sim",
                "context": {"cluster": "aetherius-sim", "user": "aetherius-sim", "namespace": namespace},
            }
        ],
        "current-context": "aetherius-sim",
        "preferences": {},
    }
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


__all__ = ["BY_PATH", "SimCluster", "SimHandle", "resolve_kind", "write_kubeconfig"]
