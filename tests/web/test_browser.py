"""The dashboard in real Chromium over seeded incidents: log in, open one, read its root cause,
resolve; and the list announces an incident it did not have over SSE, without a reload (the
demo's incidents all exist before a person can log in, so ``test_demo_browser`` cannot see that).

The committed screenshots come from the real demo: ``python -m tests.web.screenshots``.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.store import Store
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, seed_many, unique_cluster
from tests.api.server import serving
from tests.waiting import until
from tests.web.browser import chromium, log_in, record_announcements

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    return sqlite_url


async def test_login_read_root_cause_resolve(store: Store, tokens: Tokens) -> None:
    cluster = unique_cluster()
    await store.upsert_cluster(
        cluster, name="prod-eu-1", detected_by="config", watcher_health={"status": "ok"}
    )
    await seed_many(store, cluster=cluster, count=5)
    incident = await seed_incident(store, cluster=cluster, name="checkout")
    # NB: one session, several pages each with its event stream (and the streams of pages just
    # left, until the server notices): more than the default allowance of 4 per token.
    settings = make_settings(events_poll_interval="0.3s")
    app = create_app(settings=settings, store=store, bus=MemoryBus())
    async with serving(app) as base, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await log_in(page, base, tokens.operator)
        row = page.locator(f'tr[data-id="{incident.id}"]')
        await row.get_by_role("link").click()
        await page.wait_for_url(f"{base}/incidents/{incident.id}")
        root = page.get_by_test_id("root-cause")
        assert "256Mi memory limit" in (await root.inner_text())
        # The runbook's commands name this pod, and a button copies them as shown.
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        first = page.locator(".runbook pre").first
        assert incident.object_name in await first.inner_text()
        await page.locator(".runbook button.copy").first.click()
        await expect(page.locator(".runbook button.copy").first).to_have_text("Copied")
        copied = await page.evaluate("navigator.clipboard.readText()")
        assert copied == (await first.inner_text()).strip()
        # Over plain HTTP (not localhost) there is no clipboard API: the button still copies.
        plain = page
        await plain.add_init_script("Object.defineProperty(window, 'isSecureContext', {value: false})")
        await plain.reload()
        await plain.evaluate("navigator.clipboard.writeText('')")
        await plain.locator(".runbook button.copy").first.click()
        await expect(plain.locator(".runbook button.copy").first).to_have_text("Copied")
        second = (await plain.locator(".runbook pre").first.inner_text()).strip()
        assert (await plain.evaluate("navigator.clipboard.readText()")).strip() == second
        assert "OutOfMemory" in await page.locator("h2#rc-title").inner_text()
        # A tampered (or expired) CSRF token: a page a person can read, not a JSON document.
        await page.locator('form.act input[name="csrf_token"]').evaluate("e => e.value = 'tampered'")
        async with page.expect_response(f"{base}/incidents/{incident.id}/resolve") as refused:
            await page.get_by_role("button", name="Resolve").click()
        assert (await refused.value).status == 403
        advice = await page.get_by_test_id("error-advice").inner_text()
        assert advice == "Your session form expired: reload the page and try again."
        assert await page.get_by_role("heading", name="Forbidden").is_visible()
        await page.get_by_role("link", name="Reload the page").click()
        await page.wait_for_url(f"{base}/incidents/{incident.id}")
        await page.get_by_label("Note").fill("Raised the memory limit to 512Mi")
        await page.get_by_role("button", name="Resolve").click()
        await page.wait_for_url(f"{base}/incidents/{incident.id}?done=resolve")
        # NB: the live region may already say a fresh Signal reopened it; the notice is its own.
        assert "Incident resolved." in await page.locator("p.notice[role=status]").inner_text()
        # The list page opened earlier learns about the change over SSE, without a reload.
        listing = await browser.new_page()
        await listing.context.add_cookies(await page.context.cookies())
        await listing.goto(f"{base}/incidents")
        other = await seed_incident(store, cluster=cluster, name="live-update")
        await listing.locator("#live a").wait_for(timeout=8000)
        assert f"#{other.id}" in await listing.locator("#live").inner_text()
        # An incident's own page hears of its own changes only, and its "ago" keeps moving.
        await listing.goto(f"{base}/incidents/{other.id}")
        await seed_incident(store, cluster=cluster, name="unrelated")
        await store.acknowledge_incident(other.id, by="someone", note="on it")
        await expect(listing.locator('[data-field="state"]')).to_have_text("acknowledged", timeout=8000)
        await expect(listing.locator("#live")).to_contain_text("This incident is now acknowledged")
        assert await listing.locator("time[data-ago]").count() >= 1
        # Reloaded: who acknowledged it and their note, before it is resolved.
        await listing.locator("#live a").click()
        ack = listing.get_by_test_id("acknowledged")
        await expect(ack).to_contain_text("By someone")
        await expect(ack.locator("blockquote")).to_have_text("on it")
        # The overview hears of new incidents too.
        await listing.goto(f"{base}/")
        latest = await seed_incident(store, cluster=cluster, name="overview-live")
        await expect(listing.locator("#live a")).to_contain_text(f"#{latest.id}", timeout=8000)
        # "ago" is computed from the stored time, and keeps moving while the page stays open.
        clocked = await browser.new_page()
        await clocked.context.add_cookies(await page.context.cookies())
        await clocked.clock.install()
        await clocked.goto(f"{base}/incidents/{incident.id}")
        await clocked.clock.fast_forward("03:00")
        await expect(clocked.locator('[data-field="last_seen"]')).to_have_text(re.compile(r"^[34]m ago$"))
    resolved = await store.get_incident(incident.id)
    assert resolved.state == "resolved" and resolved.resolution_note == "Raised the memory limit to 512Mi"


async def test_a_refused_live_stream_is_said(store: Store, tokens: Tokens) -> None:
    """Past the token's allowance of event streams a page cannot be live: it says so."""
    await seed_incident(store, cluster=unique_cluster(), name="refused")
    settings = make_settings(events_poll_interval="0.3s", max_streams_per_token=1)
    app = create_app(settings=settings, store=store, bus=MemoryBus())
    async with serving(app) as base, chromium() as browser:
        context = await browser.new_context()
        first = await context.new_page()
        async with first.expect_response(lambda r: "/api/v1/events" in r.url) as opened:
            await log_in(first, base, tokens.viewer)  # the list: its stream is the one allowed
        assert (await opened.value).status == 200
        second = await context.new_page()
        await second.goto(f"{base}/")
        await expect(second.locator("#live")).to_contain_text("Live updates stopped")
        await expect(first.locator("#live")).to_be_empty()


async def test_the_list_announces_a_new_state_not_every_signal(store: Store, tokens: Tokens) -> None:
    """A crash loop changes its incident every few seconds: the row follows, the page only
    announces a change of state."""
    cluster = unique_cluster()
    looping = await seed_incident(store, cluster=cluster, name="looping")
    app = create_app(settings=make_settings(events_poll_interval="0.3s"), store=store, bus=MemoryBus())
    async with serving(app) as base, chromium() as browser:
        page = await browser.new_page()
        async with page.expect_response(lambda r: "/api/v1/events" in r.url):
            await log_in(page, base, tokens.viewer)
        # NB: what the store holds when the stream's poller first reads it is its baseline,
        # not news: the change below must come after that read.
        events = app.state.ctx.events
        await until(lambda: events.polls >= 1, "the event poller's first read (the baseline)")
        await record_announcements(page)
        again = await seed_incident(store, cluster=cluster, name="looping", with_report=False)
        assert again.id == looping.id and again.version > looping.version
        row = page.locator(f'tr[data-id="{looping.id}"]')
        await expect(row).to_have_class(re.compile(r"\bflash\b"), timeout=8000)  # heard, same state
        await store.acknowledge_incident(looping.id, by="someone", note="")
        await expect(row.locator(".state span")).to_have_text("acknowledged", timeout=8000)
        await expect(page.locator("#live")).to_have_text(f"Incident #{looping.id} is now acknowledged.")
        assert await page.evaluate("window.announced") == [f"Incident #{looping.id} is now acknowledged."]
