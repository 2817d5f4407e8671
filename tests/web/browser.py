"""Real Chromium for the dashboard tests and the screenshot script: one way to start it and log in."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class NoChromium(AssertionError):
    """Chromium is not installed: the dashboard tests need the real browser, so they fail, not skip."""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The installed Chromium, headless, closed on the way out whatever the test did."""
    executable = shutil.which("chromium")
    if executable is None:
        raise NoChromium("chromium is not installed (apt-get install -y chromium)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def log_in(page: Page, base: str, token: str, *, then: str = "/incidents") -> None:
    """Log in through the form, as a person would: asking for ``then`` sends the browser to the
    login page, and the form brings it back there."""
    await page.goto(base + then)
    assert "/login" in page.url, page.url
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(base + then)


async def record_announcements(page: Page) -> None:
    """Keep every text the page's live region announces in ``window.announced``: a later
    announcement replaces the region's text, and would hide the one a test waits for."""
    await page.evaluate(
        """() => {
            window.announced = [];
            const live = document.getElementById("live");
            new MutationObserver(() => window.announced.push(live.textContent))
                .observe(live, {childList: true, characterData: true, subtree: true});
        }"""
    )
