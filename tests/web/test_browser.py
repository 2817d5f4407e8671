"""The dashboard in real Chromium: log in, see incidents, open one, read its root cause, resolve.

Set ``AETHERIUS_SCREENSHOTS=docs/screenshots`` to (re)write the committed screenshots of every
page: desktop and phone, light and dark.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from aetherius.api.app import create_app
from aetherius.store import Store
from tests.api.bus import TestBus
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, seed_many, unique_cluster
from tests.api.server import serving

pytestmark = pytest.mark.browser
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(params=["sqlite"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    return sqlite_url


async def _login(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/incidents")
    assert "/login" in page.url
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{base}/incidents")


async def test_login_read_root_cause_resolve(store: Store, tokens: Tokens) -> None:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (apt-get install -y chromium)", pytrace=False)
    cluster = unique_cluster()
    await store.upsert_cluster(cluster, name="prod-eu-1", detected_by="config", watcher_health={"status": "ok"})
    await seed_many(store, cluster=cluster, count=5)
    incident = await seed_incident(store, cluster=cluster, name="checkout")
    app = create_app(settings=make_settings(events_poll_interval="0.3s"), store=store, bus=TestBus())
    shots = os.environ.get("AETHERIUS_SCREENSHOTS")
    async with serving(app) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await _login(page, base, tokens.operator)
            row = page.locator(f'tr[data-id="{incident.id}"]')
            await row.get_by_role("link").click()
            await page.wait_for_url(f"{base}/incidents/{incident.id}")
            root = page.get_by_test_id("root-cause")
            assert "256Mi memory limit" in (await root.inner_text())
            assert "OutOfMemory" in await page.locator("h2#rc-title").inner_text()
            if shots:
                await _screenshots(browser, base, tokens, incident.id, Path(shots))
            await page.get_by_label("Note").fill("Raised the memory limit to 512Mi")
            await page.get_by_role("button", name="Resolve").click()
            await page.wait_for_url(f"{base}/incidents/{incident.id}?done=resolve")
            assert "Incident resolved." in await page.get_by_role("status").first.inner_text()
            # The list page opened earlier learns about the change over SSE, without a reload.
            listing = await browser.new_page()
            await listing.context.add_cookies(await page.context.cookies())
            await listing.goto(f"{base}/incidents")
            other = await seed_incident(store, cluster=cluster, name="live-update")
            await listing.locator("#live a").wait_for(timeout=8000)
            assert f"#{other.id}" in await listing.locator("#live").inner_text()
        finally:
            await browser.close()
    resolved = await store.get_incident(incident.id)
    assert resolved.state == "resolved" and resolved.resolution_note == "Raised the memory limit to 512Mi"


async def _screenshots(browser: Browser, base: str, tokens: Tokens, incident_id: int, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pages = {
        "login": "/login",
        "overview": "/",
        "incidents": "/incidents",
        "incident": f"/incidents/{incident_id}",
        "knowledge": "/knowledge?q=memory",
        "settings": "/settings",
    }
    for device, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})):
        for scheme in ("light", "dark"):
            context = await browser.new_context(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
            page = await context.new_page()
            await page.goto(f"{base}/login")
            await page.screenshot(path=str(folder / f"login-{device}-{scheme}.png"))
            await page.get_by_label("API token").fill(tokens.admin)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_load_state()
            for name, path in pages.items():
                if name == "login":
                    continue
                await page.goto(base + path)
                await page.screenshot(path=str(folder / f"{name}-{device}-{scheme}.png"), full_page=True)
            await context.close()
