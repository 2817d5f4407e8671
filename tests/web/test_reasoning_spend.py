"""The clusters page's "Reasoning spend" in real Chromium: today's investigations of a cluster, their
tokens in and out, their cost and the share of the cluster's daily token budget; a cluster without
an investigation today has no row, and without reasoning the section says it is off."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.reasoning.budget import StoreBudget
from aetherius.store import Store
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, unique_cluster
from tests.api.server import serving
from tests.reasoning.harness import good_script, make_investigations
from tests.reasoning.scripted_llm import scripted_llm
from tests.web.browser import chromium, log_in

pytestmark = pytest.mark.browser


async def test_today_spend_per_cluster_against_the_daily_budget(store: Store, tokens: Tokens) -> None:
    spent, idle = unique_cluster(), unique_cluster()
    incident = await seed_incident(store, cluster=spent, root_cause="Unknown", summary="Unknown spend")
    await seed_incident(store, cluster=idle, name="idle-api")
    with scripted_llm(good_script(incident.object_name)) as llm:
        service = make_investigations(
            store, llm.url, pod=incident.object_name, budget=StoreBudget(store, 1_000)
        )
        record = await service.start(incident.id, requested_by="tester")
        done = await service.wait(record.id)
    assert done.status == "done" and (done.tokens_in, done.tokens_out) == (200, 70)
    app = create_app(settings=make_settings(), store=store, bus=MemoryBus(), investigations=service)
    try:
        async with serving(app) as base, chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await log_in(page, base, tokens.viewer)
            await page.goto(f"{base}/clusters")
            section = page.get_by_role("region", name="Reasoning spend")
            row = section.locator(f'tr[data-spend-cluster="{spent}"]')
            await expect(row.locator(".investigations")).to_have_text("1")
            await expect(row.locator(".tokens-in")).to_have_text("200")
            await expect(row.locator(".tokens-out")).to_have_text("70")
            await expect(row.locator(".cost")).to_have_text("0.0041")  # 200 × 0.00001 + 70 × 0.00003
            await expect(row.locator(".used")).to_have_text("27% of 1,000")
            await expect(row.locator(".counted")).to_have_text("(270 counted)")
            assert await row.get_by_role("meter").get_attribute("value") == "27"
            assert await section.locator(f'tr[data-spend-cluster="{idle}"]').count() == 0
    finally:
        await service.close()


async def test_without_reasoning_the_section_says_it_is_off(store: Store, tokens: Tokens) -> None:
    app = create_app(settings=make_settings(), store=store, bus=MemoryBus())
    async with serving(app) as base, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await log_in(page, base, tokens.viewer)
        await page.goto(f"{base}/clusters")
        section = page.get_by_role("region", name="Reasoning spend")
        await expect(section).to_contain_text("Reasoning is off")
