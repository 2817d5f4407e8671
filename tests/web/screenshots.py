"""Rewrite ``docs/screenshots/`` from the real ``aetherius demo``: every page, desktop and phone,
light and dark.

Run from the repository root: ``python -m tests.web.screenshots [folder]``. Not part of the test
run (the browser test checks behaviour; this only records what a person sees). It waits until
the demo's six incidents are diagnosed, resolves the ImageNotFound one with a note so the
knowledge page has a past resolution to find, acknowledges the DependencyUnavailable one with a
note (``incident-acknowledged``: who and why, and the log lines that prove the cause), and shoots
the OutOfMemory incident, the Clusters page and a runbook too.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Browser, Page

from tests.web.browser import chromium, log_in
from tests.web.demo import Demo, running_demo

DEVICES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
SCHEMES = ("light", "dark")


async def incident_id(page: Page, demo: Demo, *, workload: str, cause: str, timeout: float = 60) -> int:
    """The id of the incident of ``workload`` once diagnosed as ``cause`` (reloading the list)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await page.goto(f"{demo.url}/incidents")
        rows = page.locator("table.incidents tbody tr").filter(has_text=workload).filter(has_text=cause)
        if await rows.count() == 1:
            return int(await rows.get_attribute("data-id") or "0")
        await page.wait_for_timeout(1000)
    raise demo.explain(f"no {cause} incident for {workload} within {timeout}s")


async def shoot(browser: Browser, demo: Demo, folder: Path, *, pages: dict[str, str]) -> list[Path]:
    written: list[Path] = []
    for device, viewport in DEVICES.items():
        for scheme in SCHEMES:
            context = await browser.new_context(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
            page = await context.new_page()
            await page.goto(f"{demo.url}/login")
            written.append(folder / f"login-{device}-{scheme}.png")
            await page.screenshot(path=str(written[-1]), animations="disabled")
            await log_in(page, demo.url, demo.token)
            for name, path in pages.items():
                await page.goto(demo.url + path)
                written.append(folder / f"{name}-{device}-{scheme}.png")
                await page.screenshot(path=str(written[-1]), full_page=True, animations="disabled")
            await context.close()
    return written


async def main(folder: Path) -> None:
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aetherius-shots-") as tmp:
        async with chromium() as browser, running_demo(Path(tmp)) as demo:
            page = await browser.new_page()
            await log_in(page, demo.url, demo.token)
            oom = await incident_id(page, demo, workload="checkout", cause="OutOfMemory")
            image = await incident_id(page, demo, workload="frontend", cause="ImageNotFound")
            await page.goto(f"{demo.url}/incidents/{image}")
            await page.get_by_label("Note").fill("Tag 2.4.1 was never pushed; rolled back to 2.4.0.")
            await page.get_by_role("button", name="Resolve").click()
            await page.wait_for_url(f"{demo.url}/incidents/{image}?done=resolve")
            orders = await incident_id(page, demo, workload="orders", cause="DependencyUnavailable")
            await page.goto(f"{demo.url}/incidents/{orders}")
            await page.get_by_label("Note").fill("postgres is scaled to 0; scaling it back to 1.")
            await page.get_by_role("button", name="Acknowledge").click()
            await page.wait_for_url(f"{demo.url}/incidents/{orders}?done=acknowledge")
            pages = {
                "overview": "/",
                "incidents": "/incidents",
                "incident": f"/incidents/{oom}",
                "incident-acknowledged": f"/incidents/{orders}",
                "clusters": "/clusters",
                "knowledge": "/knowledge?q=image",
                "runbook": "/knowledge/runbooks/crash-loop-back-off",
                "settings": "/settings",
            }
            written = await shoot(browser, demo, folder, pages=pages)
            await demo.stop(timeout=20)
    for path in written:
        print(path)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")))
