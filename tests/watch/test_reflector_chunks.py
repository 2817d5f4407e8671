"""A received chunk of watch lines is handed over whole, in order, and nothing before a bad line
is lost: a real HTTP server writes the chunk, the real KubeClient and Reflector read it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from aiohttp import web

from aetherius.config import WatcherSettings
from aetherius.kube import KubeClient
from aetherius.sim import write_kubeconfig
from aetherius.watch.reflector import EVENTS, PODS, Gone, Reflector, ResourceSpec
from tests.services import free_port


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], str | None]] = []
        self.gone: list[float] = []

    async def watch_gone(self, reflector: Reflector, *, quiet_for: float) -> None:
        self.gone.append(quiet_for)

    def relist_started(self, reflector: Reflector) -> None:
        self.calls.append(("relist", [], None))

    async def handle(self, reflector: Reflector, changes: Any, rv: str | None) -> None:
        names = [f"{c.type} {c.object.metadata.name}" for c in changes]
        self.calls.append(("handle", names, rv))

    async def checkpoint(self, reflector: Reflector, rv: str) -> None:
        self.calls.append(("checkpoint", [], rv))


def _line(watch_type: str, name: str, rv: str) -> bytes:
    return orjson.dumps({"type": watch_type, "object": {"metadata": {"name": name, "resourceVersion": rv}}})


GONE = orjson.dumps(
    {"type": "ERROR", "object": {"kind": "Status", "status": "Failure", "code": 410, "message": "too old"}}
)


@asynccontextmanager
async def _serving(tmp_path: Path, body: bytes) -> AsyncIterator[KubeClient]:
    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(body)  # one write: the client reads it as one chunk
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/v1/events", watch)
    app.router.add_get("/api/v1/pods", watch)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url=f"http://127.0.0.1:{port}")
    client = await KubeClient.from_kubeconfig(kubeconfig)
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()


def _reflector(client: KubeClient, spec: ResourceSpec, sink: Sink) -> Reflector:
    return Reflector(client=client, spec=spec, sink=sink, settings=WatcherSettings(), resource_version="1")


async def test_a_chunk_is_handed_over_whole_and_a_bookmark_splits_it(tmp_path: Path) -> None:
    body = b"\n".join(
        [
            _line("ADDED", "a", "2"),
            _line("MODIFIED", "b", "3"),
            _line("BOOKMARK", "", "4"),
            _line("DELETED", "c", "5"),
        ]
    )
    sink = Sink()
    async with _serving(tmp_path, body + b"\n") as client:
        reflector = _reflector(client, EVENTS, sink)
        await reflector._watch()
    assert sink.calls == [
        ("handle", ["ADDED a", "MODIFIED b"], "3"),
        ("checkpoint", [], "4"),
        ("handle", ["DELETED c"], "5"),
    ]
    assert reflector.resource_version == "5" and reflector.events_seen == 4


async def test_what_came_before_an_error_in_the_same_chunk_is_handed_over_first(tmp_path: Path) -> None:
    # a Pod watch's ERROR object is a Status, which does not decode as a Pod: line by line
    sink = Sink()
    async with _serving(tmp_path, _line("ADDED", "p1", "7") + b"\n" + GONE + b"\n") as client:
        reflector = _reflector(client, PODS, sink)
        with pytest.raises(Gone):
            await reflector._watch()
    assert sink.calls == [("handle", ["ADDED p1"], "7")]
    assert reflector.resource_version == "7"


async def test_an_events_watch_error_raises_after_the_changes_before_it(tmp_path: Path) -> None:
    sink = Sink()
    async with _serving(tmp_path, _line("ADDED", "e1", "8") + b"\n" + GONE + b"\n") as client:
        reflector = _reflector(client, EVENTS, sink)
        with pytest.raises(Gone):
            await reflector._watch()
    assert sink.calls == [("handle", ["ADDED e1"], "8")]


async def test_a_bad_line_raises_after_the_changes_before_it_and_the_watch_resumes_after_them(
    tmp_path: Path,
) -> None:
    body = b"\n".join([_line("ADDED", "e1", "9"), b"{not json", _line("ADDED", "e2", "10")])
    sink = Sink()
    async with _serving(tmp_path, body + b"\n") as client:
        reflector = _reflector(client, EVENTS, sink)
        with pytest.raises(msgspec.DecodeError):
            await reflector._watch()
    assert sink.calls == [("handle", ["ADDED e1"], "9")]
    assert reflector.resource_version == "9"


async def test_blank_lines_between_events_are_skipped(tmp_path: Path) -> None:
    body = _line("ADDED", "a", "2") + b"\n\n  \n" + _line("ADDED", "b", "3") + b"\n"
    sink = Sink()
    async with _serving(tmp_path, body) as client:
        reflector = _reflector(client, EVENTS, sink)
        await reflector._watch()
    assert sink.calls == [("handle", ["ADDED a", "ADDED b"], "3")]
