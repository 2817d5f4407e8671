"""An edge agent dials out over TLS, or over WebSocket where only 443 leaves its cluster.

Same agent, same credential, same promises: its Signals arrive and central reads its cluster
through it. The server's certificate is checked against the CA given (``message_bus.tls_ca_file``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aetherius.sim.node_stats import self_signed_certificate
from aetherius.store import IncidentFilters
from tests.edge.conftest import Central, Fleet
from tests.hub import Hub
from tests.waiting import until


@pytest.fixture(params=["tls", "websocket"])
async def hub(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hub]:
    directory = tmp_path / "hub"
    directory.mkdir()
    if request.param == "tls":
        central = Hub(directory, tls=self_signed_certificate(directory, name="central-nats"))
    else:
        central = Hub(directory, websocket=True)
    central.start()
    try:
        yield central
    finally:
        central.stop()


@pytest.mark.parametrize("fleet_db", ["sqlite"], indirect=True)
async def test_an_agent_over_tls_or_websocket_is_read_like_any_other(
    hub: Hub, fleet: Fleet, central: Central
) -> None:
    url = hub.ws_url if hub.ws_port else None
    if hub.tls:
        assert hub.url.startswith("tls://")
    member = await fleet.join("far", scenario="crashloop-oom", url=url)
    assert member.bus.settings.url.startswith("ws://" if hub.ws_port else "tls://")

    async def diagnosed() -> Any:
        page = await central.store.list_incidents(IncidentFilters(cluster_id="far"), limit=50)
        return [i for i in page.items if i.root_cause == "OutOfMemory"]

    found = await until(diagnosed, timeout=60, what="an OOM diagnosed through the far agent")
    audit = await central.store.list_audit(incident_id=int(found[0].id))
    assert audit and {row.cluster_id for row in audit} == {"far"}


async def test_a_server_whose_certificate_the_agent_cannot_verify_is_refused(tmp_path: Path) -> None:
    from aetherius.bus.base import BusUnavailable
    from aetherius.fleet.edge import edge_bus
    from aetherius.fleet.identity import parse_token
    from tests.edge.conftest import fleet_settings

    central = Hub(tmp_path, tls=self_signed_certificate(tmp_path, name="impostor"))
    token = central.add("careful")
    central.start()
    try:
        settings = fleet_settings(central, mode="edge")
        unverified = settings.message_bus.model_copy(update={"tls_ca_file": None})
        cluster, seed = parse_token(token)
        bus = edge_bus(settings.model_copy(update={"message_bus": unverified}), cluster=cluster, seed=seed)
        with pytest.raises(BusUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await bus.connect()
        await bus.close()
    finally:
        central.stop()
