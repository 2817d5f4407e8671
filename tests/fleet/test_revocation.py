"""Who may connect at all: registered keys only, and a removed cluster is out after the reload.

What nats-server 2.9 really does on a reload (SIGHUP) that drops a user: it re-checks every
client against the new authorization and closes the connections of the dropped one (the client
sees the socket end; its reconnects are refused with "Authorization Violation"). So a revoked
edge agent loses its live connection too, not only its next one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import nats.errors
import pytest

from aetherius.bus import open_bus
from aetherius.bus.base import BusUnavailable
from aetherius.fleet.identity import EdgeCredential, new_credential
from aetherius.fleet.registry import reload_server
from tests.fleet.clients import BUS, Edge, connect_edge
from tests.fleet.conftest import Fleet
from tests.hub import PATIENCE

AUTHORIZATION_VIOLATION = "nats: 'Authorization Violation'"


async def _refused_connect(url: str, **options: object) -> str:
    with pytest.raises(nats.errors.Error) as caught:
        await nats.connect(url, allow_reconnect=False, connect_timeout=PATIENCE, **options)  # type: ignore[arg-type]
    return str(caught.value)


async def _connect_once_reloaded(url: str, credential: EdgeCredential) -> Edge:
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while True:
        try:
            return await connect_edge(url, credential)
        except (nats.errors.Error, OSError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_an_unknown_key_or_no_key_cannot_connect(fleet: Fleet) -> None:
    stranger = new_credential("a")  # a's name, not a's key
    assert (
        await _refused_connect(fleet.central.url, **stranger.connect_options(BUS)) == AUTHORIZATION_VIOLATION
    )
    assert await _refused_connect(fleet.central.url) == AUTHORIZATION_VIOLATION


async def test_a_removed_cluster_is_disconnected_by_the_reload_and_refused_after(fleet: Fleet) -> None:
    edge_a = await connect_edge(fleet.central.url, fleet.a)
    edge_b = await connect_edge(fleet.central.url, fleet.b)
    try:
        assert fleet.central.registry.remove("a")
        reload_server(fleet.central.pid_file)
        # The reload closes a's live connection (allow_reconnect is off, so it ends as closed).
        await asyncio.wait_for(edge_a.closed.wait(), timeout=PATIENCE)
        assert edge_a.nc.is_closed
        assert (
            await _refused_connect(fleet.central.url, **fleet.a.connect_options(BUS))
            == AUTHORIZATION_VIOLATION
        )
        # b was not touched: still connected, still allowed to publish its Signals.
        assert edge_b.nc.is_connected and not edge_b.closed.is_set()
        ack = await edge_b.nc.jetstream().publish(f"{BUS.subject_prefix}.b.events", b"x", timeout=PATIENCE)
        assert ack.seq == 1
    finally:
        await edge_b.nc.close()
        await edge_a.nc.close()


async def test_a_reconnecting_removed_cluster_is_refused(fleet: Fleet) -> None:
    """An agent that reconnects by itself (as a real one does) hears why it cannot come back."""
    errors: asyncio.Queue[str] = asyncio.Queue()

    async def on_error(exc: Exception) -> None:
        errors.put_nowait(str(exc))

    nc = await nats.connect(
        fleet.central.url,
        max_reconnect_attempts=3,
        reconnect_time_wait=0.05,
        error_cb=on_error,
        **fleet.a.connect_options(BUS),
    )
    try:
        fleet.central.registry.remove("a")
        reload_server(fleet.central.pid_file)
        seen: list[str] = []
        while AUTHORIZATION_VIOLATION not in seen:
            seen.append(await asyncio.wait_for(errors.get(), timeout=PATIENCE))
    finally:
        await nc.close()


async def test_rotation_replaces_the_key(fleet: Fleet) -> None:
    rotated = fleet.central.registry.add("a", rotate=True)
    assert rotated is not None and rotated.seed != fleet.a.seed
    reload_server(fleet.central.pid_file)
    # The reload runs after the signal returns: until it has, the new key is still unknown.
    edge = await _connect_once_reloaded(fleet.central.url, rotated)
    try:
        ack = await edge.nc.jetstream().publish(f"{BUS.subject_prefix}.a.events", b"x", timeout=PATIENCE)
        assert ack.seq == 1
    finally:
        await edge.nc.close()
    # The reload is done (the new key works), so the old one must already be refused.
    assert (
        await _refused_connect(fleet.central.url, **fleet.a.connect_options(BUS)) == AUTHORIZATION_VIOLATION
    )


async def test_central_connects_as_its_user_with_the_seed_from_its_file_or_environment(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one way central proves who it is: ``message_bus.nkey_seed_file`` or the variable
    ``message_bus.nkey_seed_env`` names, read by ``open_bus`` (a Secret in production)."""
    seed_file = fleet.central.registry.auth_dir / "central.nk"
    base = fleet.central.settings().model_copy(update={"max_reconnect_attempts": 0})

    monkeypatch.delenv("AETHERIUS_NATS_NKEY_SEED", raising=False)
    with pytest.raises(BusUnavailable, match="Authorization Violation"):
        await open_bus(base, name="no-key")

    for settings in (
        base.model_copy(update={"nkey_seed_file": seed_file}),
        base.model_copy(update={"nkey_seed_env": "CENTRAL_SEED_UNDER_TEST"}),
    ):
        monkeypatch.setenv("CENTRAL_SEED_UNDER_TEST", seed_file.read_text().strip())
        bus = await open_bus(settings, name="central")
        try:
            kv = await bus.key_value(BUS.kv_bucket)  # central's own bucket: only central may
            await kv.put("probe", b"central")
            assert await kv.get("probe") == b"central"
        finally:
            await bus.close()

    missing = base.model_copy(update={"nkey_seed_file": tmp_path / "absent.nk"})
    with pytest.raises(BusUnavailable, match=r"message_bus\.nkey_seed_file: cannot read it: No such file"):
        await open_bus(missing, name="central")
