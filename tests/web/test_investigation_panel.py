"""The investigation panel of the incident page: in real Chromium, a person starts one, watches its
progress live, reads the answer with its evidence marked verified or not, the model, tokens and
cost, and asks a follow-up; without reasoning configured the panel says so and offers nothing."""

from __future__ import annotations

import secrets
import threading

import httpx
import pytest
from playwright.async_api import expect

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.reasoning.budget import StoreBudget
from aetherius.store import Incident, Store
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, unique_cluster
from tests.api.server import serving
from tests.reasoning.harness import FATAL, good_script, make_investigations
from tests.reasoning.scripted_llm import gated, scripted_llm, text
from tests.web.browser import chromium, log_in
from tests.web.test_sessions import login


async def _incident(store: Store) -> Incident:
    return await seed_incident(
        store, cluster=unique_cluster(), root_cause="Unknown", summary=f"Unknown {secrets.token_hex(6)}"
    )


@pytest.mark.browser
async def test_investigate_watch_read_and_ask_in_chromium(store: Store, tokens: Tokens) -> None:
    incident = await _incident(store)
    gate = threading.Event()
    read, answer = good_script(incident.object_name)
    follow = text({"summary": "It began with the payments rollout.", "root_cause": "CrashLoopBackOff"})
    with scripted_llm([read, gated(answer, gate), follow]) as llm:
        service = make_investigations(store, llm.url, pod=incident.object_name)
        app = create_app(
            settings=make_settings(events_poll_interval="0.1s"),
            store=store,
            bus=MemoryBus(),
            investigations=service,
        )
        async with serving(app) as base, chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await log_in(page, base, tokens.operator)
            await page.goto(f"{base}/incidents/{incident.id}")
            panel = page.get_by_test_id("investigation")
            await panel.get_by_role("button", name="Investigate").click()
            # Live: the model read the log and is asked again; its answer is held back meanwhile.
            progress = panel.get_by_test_id("inv-progress")
            await expect(progress).to_contain_text("Reading: pod_logs")
            await expect(progress).to_contain_text("Asking the model (step 2)")
            assert await panel.get_by_role("button", name="Investigate").is_disabled()
            gate.set()
            # Done: the page shows the answer (reloaded), evidence marked, model, tokens and cost.
            await expect(panel.get_by_test_id("inv-summary")).to_contain_text(incident.object_name)
            verified = panel.locator("li.verified")
            unverified = panel.locator("li.unverified")
            await expect(verified).to_have_count(1)
            await expect(verified).to_contain_text(FATAL)
            await expect(verified).to_contain_text("✓ verified")
            await expect(unverified).to_contain_text("⚠ unverified")
            meta = panel.get_by_test_id("inv-meta")
            await expect(meta).to_contain_text("scripted-1")
            await expect(meta).to_contain_text("200 tokens in, 70 out")
            await expect(meta).to_contain_text("cost 0.0041")
            await expect(panel.get_by_test_id("inv-ending")).to_have_text("answered")
            # The rules' root cause stays the page's headline.
            await expect(page.locator("h2#rc-title")).to_contain_text("Unknown")
            # A follow-up in the same conversation.
            await panel.get_by_label("Ask a follow-up question").fill("When did it start?")
            await panel.get_by_role("button", name="Ask").click()
            await expect(panel.get_by_test_id("inv-summary")).to_have_text(
                "It began with the payments rollout."
            )
            await expect(panel.get_by_test_id("inv-question")).to_have_text("When did it start?")
            await expect(meta).to_contain_text("2 answers")
        await service.close()
    assert len(llm.requests) == 3
    assert len(llm.requests[2]["messages"]) == len(llm.requests[1]["messages"]) + 2


async def test_without_reasoning_the_panel_says_so_and_offers_nothing(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    incident = await _incident(store)
    await login(client, tokens.operator)
    page = (await client.get(f"/incidents/{incident.id}")).text
    assert 'data-testid="inv-off"' in page and 'data-action="investigate"' not in page


async def test_a_refused_investigation_is_shown_with_why_and_a_viewer_gets_no_button(
    store: Store, tokens: Tokens
) -> None:
    incident = await _incident(store)
    service = make_investigations(
        store, "http://127.0.0.1:9/v1", pod=incident.object_name, budget=StoreBudget(store, 0)
    )
    refused = await service.start(incident.id, requested_by="ops")
    assert refused.ending == "daily-budget"
    app = create_app(settings=make_settings(), store=store, bus=MemoryBus(), investigations=service)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await login(client, tokens.operator)
        page = (await client.get(f"/incidents/{incident.id}")).text
        assert 'data-testid="inv-ending">daily-budget<' in page and "spent its daily budget" in page
        assert 'data-action="investigate"' in page
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await login(client, tokens.viewer)
        page = (await client.get(f"/incidents/{incident.id}")).text
        assert "spent its daily budget" in page and 'data-action="investigate"' not in page
