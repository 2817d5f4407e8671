"""The dashboard's clusters in real Chromium: the incident list filtered by a cluster chosen in
its selector (the choice kept in the URL, so a reload or a shared link shows the same), the
cluster on each row and on the incident's page, and the cluster list with each one's status.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.store import Store
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, unique_cluster
from tests.api.server import serving
from tests.web.browser import chromium, log_in

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    return sqlite_url


async def test_filter_by_cluster_and_list_clusters(store: Store, tokens: Tokens) -> None:
    east, west = unique_cluster(), unique_cluster()
    await store.upsert_cluster(
        east,
        name=east,
        detected_by="namespace_uid",
        watcher_health={"status": "ok", "seconds_since_progress": 1.0, "signals_behind": 3},
    )
    await store.upsert_cluster(
        west,
        name=west,
        detected_by="env",
        watcher_health={"status": "unreachable", "seconds_since_report": 95.0, "reported_status": "ok"},
    )
    in_east = await seed_incident(store, cluster=east, name="east-api")
    in_west = await seed_incident(store, cluster=west, name="west-api")
    app = create_app(settings=make_settings(), store=store, bus=MemoryBus())
    async with serving(app) as base, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await log_in(page, base, tokens.viewer)
        await page.get_by_label("Cluster").select_option(east)
        await page.get_by_role("button", name="Filter").click()
        await page.wait_for_url(f"{base}/incidents?cluster={east}**")
        assert parse_qs(urlparse(page.url).query)["cluster"] == [east]
        rows = page.locator("table.incidents tbody tr")
        assert await rows.count() >= 1
        assert set(await rows.locator(".cluster").all_inner_texts()) == {east}
        assert await page.locator(f'tr[data-id="{in_west.id}"]').count() == 0
        # The filter is in the URL: a reload keeps it, and the selector shows it.
        await page.reload()
        assert await page.get_by_label("Cluster").input_value() == east
        assert await page.locator(f'tr[data-id="{in_east.id}"]').count() == 1
        # The incident's page names its cluster, and leads back to that cluster's incidents.
        await page.locator(f'tr[data-id="{in_east.id}"]').get_by_role("link").click()
        await page.wait_for_url(f"{base}/incidents/{in_east.id}")
        assert await page.get_by_test_id("incident-cluster").inner_text() == east
        # The cluster list: each one's status, how its id was found, its watcher, its lag.
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Clusters").click()
        await page.wait_for_url(f"{base}/clusters")
        east_row = page.locator(f'tr[data-cluster="{east}"]')
        assert (await east_row.locator(".status").inner_text()).strip() == "connected"
        assert await east_row.locator(".detected").inner_text() == "kube-system namespace UID"
        assert (await east_row.locator(".watcher").inner_text()).startswith("ok")
        assert await east_row.locator(".behind").inner_text() == "3"
        west_row = page.locator(f'tr[data-cluster="{west}"]')
        assert (await west_row.locator(".status").inner_text()).strip() == "unreachable"
        assert "no report for 1m 35s" in await west_row.locator(".watcher").inner_text()
        assert await west_row.locator(".behind").inner_text() == "—"
        # On a phone every value shows beside its label, none scrolled out of sight.
        await page.set_viewport_size({"width": 390, "height": 844})
        for cell in ("status", "seen", "detected", "watcher", "behind"):
            box = await east_row.locator(f".{cell}").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (cell, box)
        label = await east_row.locator(".behind").evaluate("e => getComputedStyle(e, '::before').content")
        assert label == '"Signals behind"'
        await page.set_viewport_size({"width": 1280, "height": 900})
        await west_row.get_by_role("link").click()
        await page.wait_for_url(f"{base}/incidents?cluster={west}")
        assert await page.locator(f'tr[data-id="{in_west.id}"]').count() == 1
