"""Run the API role: open the store and bus, print the first admin token once, serve uvicorn."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence

import uvicorn
from fastapi import FastAPI

from aetherius.api.app import create_app, settle_heap
from aetherius.api.tokens import ensure_first_admin
from aetherius.bus import BusUnavailable, open_bus
from aetherius.config import ConfigError, Settings
from aetherius.logs import get_logger
from aetherius.store import Store, StoreError

_log = get_logger(__name__)


class ServeError(Exception):
    """The API cannot start (store or bus unreachable, port taken); phrased for a person."""


class Server(uvicorn.Server):
    """uvicorn's server that returns when it cannot listen (``started`` stays False).

    NB: uvicorn itself calls ``sys.exit`` then, and a SystemExit raised in a task escapes the
    event loop as a traceback; the caller says "is the port in use?" in one line instead.
    """

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().serve(sockets)
        except SystemExit:
            if self.started:
                raise

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT shut the server down gracefully, and the process then exits 0.

        NB: uvicorn raises the captured signal again after its graceful shutdown, so the process
        would die by SIGTERM (exit -15) even though it stopped cleanly; every Aetherius role exits
        0 once it has stopped as asked.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


async def serve(
    settings: Settings,
    *,
    announce: Callable[[str], None],
    extensions: Sequence[Callable[[FastAPI], None]] = (),
) -> None:
    """Serve until interrupted. ``announce`` prints to stdout (the address, the first token)."""
    try:
        store = await Store.from_settings(settings)
    except StoreError as exc:
        raise ServeError(f"cannot open the store: {exc}") from None
    try:
        try:
            bus = await open_bus(settings.message_bus, name="aetherius-api")
        except BusUnavailable as exc:
            raise ServeError(f"cannot reach the message bus: {exc}") from None
        try:
            secret = await ensure_first_admin(store)
            if secret is not None:
                # NB: stdout only, once; never through the logger.
                announce(f"First admin token (shown once, store it now): {secret}")
            kube = None
            diagnose = None
            investigations = None
            if settings.kube.kubeconfig is not None or settings.kube.in_cluster:
                from aetherius.api.diagnosis import live_diagnose
                from aetherius.kube import KubeClient

                kube = await KubeClient.from_settings(settings.kube)
                diagnose = live_diagnose(
                    kube,
                    store=store,
                    cluster=settings.cluster_id or "default",
                    secret_metadata=settings.kube.secret_metadata,
                )
            from aetherius.reasoning.setup import investigations_from_settings

            try:
                investigations = investigations_from_settings(settings, store=store, kube=kube)
            except ConfigError as exc:
                raise ServeError(str(exc)) from None
            app = create_app(
                settings=settings,
                store=store,
                bus=bus,
                diagnose=diagnose,
                investigations=investigations,
                extensions=extensions,
            )
            api = settings.api
            config = uvicorn.Config(
                app,
                proxy_headers=True,
                forwarded_allow_ips=",".join(settings.api.trusted_proxies),
                host=api.host,
                port=api.port,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=10,
            )
            server = Server(config)
            settle_heap()
            announce(f"Aetherius API and dashboard on http://{api.host}:{api.port}")
            _log.info("api serving", host=api.host, port=api.port)
            await server.serve()
            if not server.started:
                raise ServeError(f"could not listen on {api.host}:{api.port} (is the port in use?)")
        finally:
            if investigations is not None:
                await investigations.close()
            if kube is not None:
                await kube.close()
            await bus.close()
    finally:
        await store.close()
