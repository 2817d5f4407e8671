"""The overview beside its incidents: every cluster they come from is listed, each with a time
the browser keeps moving, and the page listens for new incidents."""

from __future__ import annotations

import re

import httpx

from aetherius.store import Store
from tests.api.conftest import Tokens
from tests.api.seed import seed_incident, unique_cluster
from tests.web.test_sessions import login


async def test_a_cluster_known_by_its_incidents_is_listed(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    cluster = unique_cluster()  # an incident of it, and no record of the cluster itself
    incident = await seed_incident(store, cluster=cluster, reason="BackOff")
    await login(client, tokens.viewer)
    page = (await client.get("/")).text
    clusters = page[page.index('id="clusters-title"') : page.index('id="chart-title"')]
    assert "No cluster has reported yet" not in clusters
    assert cluster in clusters and "known by its incidents only" in clusters
    assert re.search(r'seen <time datetime="[^"]+" data-ago>', clusters)
    # Its incident is titled by what broke, not by the Event's reason.
    assert (
        f"#{incident.id} Out of memory: Deployment shop/api" in page and f"#{incident.id} BackOff" not in page
    )
    assert 'id="live"' in page and "/api/v1/events?since=" in page


async def test_a_severity_tile_leads_to_the_incidents_it_counts(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    """The tiles count open and acknowledged incidents; their list must show the acknowledged too."""
    cluster = unique_cluster()
    acknowledged = await seed_incident(store, cluster=cluster, name="acked")
    await store.acknowledge_incident(acknowledged.id, by="someone", note="on it")
    await login(client, tokens.viewer)
    page = (await client.get("/")).text
    assert 'href="/incidents?severity=critical&amp;state=unresolved"' in page
    listed = (await client.get(f"/incidents?severity=critical&state=unresolved&cluster={cluster}")).text
    assert f'data-id="{acknowledged.id}"' in listed and '<option value="unresolved" selected>' in listed
    only_open = (await client.get(f"/incidents?severity=critical&state=open&cluster={cluster}")).text
    assert f'data-id="{acknowledged.id}"' not in only_open
