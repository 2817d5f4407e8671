"""``aetherius run``: watcher, orchestrator and API/dashboard in one process.

Given several clusters (``clusters:`` in app.yaml, or ``--kubeconfig``/``--context`` repeated),
it is out-of-cluster mode: one watcher per cluster, one orchestrator and one API for all.

The embedded mode for a newcomer with a cluster: an in-process bus (``memory://``) and a SQLite
file under ``$XDG_DATA_HOME/aetherius`` (``~/.local/share/aetherius``) by default, nothing else to
install. The roles are the same code as the distributed deployment, started side by side over one
store, one bus and one cluster client; the API serves the dashboard and the health probes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator

import uvicorn

from aetherius.api.deps import DiagnoseFn
from aetherius.api.diagnosis import readers_diagnose
from aetherius.api.serve import Server
from aetherius.api.tokens import ensure_first_admin
from aetherius.compose.app import create_app
from aetherius.config import ConfigError, Settings
from aetherius.logs import get_logger
from aetherius.orchestrator.process import (
    Connections,
    OrchestratorProcess,
    StartError,
    check_clusters_write_access,
    open_connections,
)
from aetherius.orchestrator.watcher import run_watcher
from aetherius.reasoning.setup import investigations_from_settings

log = get_logger(__name__)

Announce = Callable[[str], None]


class _Server(Server):
    """uvicorn without its own signal handling: the process' stop event ends it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def dashboard_url(settings: Settings, *, port: int | None = None) -> str:
    host = settings.api.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port or settings.api.port}"


def _bound_port(server: uvicorn.Server) -> int | None:
    """The port really listened on (``--port 0`` picks one)."""
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets or []:
            return int(sock.getsockname()[1])
    return None


async def _serve_api(server: _Server, stop: asyncio.Event) -> None:
    serving = asyncio.create_task(server.serve(), name="api")
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving


def _scanner(settings: Settings, conn: Connections, *, process: OrchestratorProcess) -> DiagnoseFn:
    """The API's on-demand diagnosis, through the orchestrator's readers: the one cluster, the
    cluster a request names (out-of-cluster mode), or a member cluster's agent (central mode)."""
    return readers_diagnose(process.readers, store=conn.store, default_cluster=settings.cluster_id or "")


def _watchers(
    settings: Settings, conn: Connections, *, stop: asyncio.Event, process: OrchestratorProcess
) -> list[asyncio.Task[None]]:
    if not conn.clusters:
        watcher = run_watcher(settings, bus=conn.bus, kube=conn.kube, stop=stop, clusters=process.clusters)
        return [asyncio.create_task(watcher, name="watcher")]
    return [
        asyncio.create_task(
            run_watcher(
                settings,
                bus=conn.bus,
                kube=c.kube,
                stop=stop,
                clusters=process.clusters,
                named=(c.cluster_id, c.detected_by),
            ),
            name=f"watcher of {c.cluster_id}",
        )
        for c in conn.clusters
    ]


async def run_roles(
    settings: Settings, conn: Connections, *, stop: asyncio.Event, announce: Announce
) -> None:
    """The three roles over opened connections until ``stop`` (or one of them ends).

    Out-of-cluster mode (``conn.clusters``) runs one watcher per cluster beside the one
    orchestrator and API; each reads, and is diagnosed through, its own client.
    """
    secret = await ensure_first_admin(conn.store)
    await check_clusters_write_access(settings, conn, announce=announce)
    process = OrchestratorProcess(
        settings, store=conn.store, bus=conn.bus, kube=conn.kube, role="run", clusters=conn.clusters
    )
    scanner = _scanner(settings, conn, process=process)
    try:
        investigations = investigations_from_settings(settings, store=conn.store, kube=conn.kube)
    except ConfigError as exc:
        raise StartError(str(exc)) from None
    app = create_app(
        settings=settings, store=conn.store, bus=conn.bus, diagnose=scanner, investigations=investigations
    )
    server = _Server(
        uvicorn.Config(
            app,
            proxy_headers=True,
            forwarded_allow_ips=",".join(settings.api.trusted_proxies),
            host=settings.api.host,
            port=settings.api.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
    )
    inner = asyncio.Event()
    tasks = {
        asyncio.create_task(process.run(inner), name="orchestrator"),
        *_watchers(settings, conn, stop=inner, process=process),
        asyncio.create_task(_serve_api(server, inner), name="api"),
    }
    waiting = asyncio.create_task(stop.wait())
    started = False
    try:
        while not stop.is_set():
            if not started and server.started:
                started = True
                announce(f"Aetherius dashboard: {dashboard_url(settings, port=_bound_port(server))}")
                if secret is not None:
                    # NB: stdout only, once; never through the logger.
                    announce(f"First admin token (shown once, store it now): {secret}")
            done, _ = await asyncio.wait({*tasks, waiting}, timeout=0.1, return_when=asyncio.FIRST_COMPLETED)
            ended = done & tasks
            if ended:
                role = next(iter(ended))
                error = role.exception()
                log.error("a role ended; stopping the others", role=role.get_name(), error=repr(error))
                if not server.started and role.get_name() == "api":
                    raise StartError(
                        f"could not listen on {settings.api.host}:{settings.api.port} (is the port in use?)"
                    )
                if error is not None:
                    raise StartError(f"the {role.get_name()} stopped: {error}") from error
                break
    finally:
        inner.set()
        waiting.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await investigations.close()
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, Exception):
                log.error("role failed while stopping", role=task.get_name(), error=repr(result))


async def serve_all(settings: Settings, *, stop: asyncio.Event, announce: Announce) -> None:
    """``aetherius run``: open the connections, run the roles until ``stop``."""
    async with open_connections(settings, role="run") as conn:
        await run_roles(settings, conn, stop=stop, announce=announce)
