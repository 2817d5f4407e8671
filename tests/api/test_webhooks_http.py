"""The Event Gateway over HTTP: Alertmanager fixtures in, Signals on the bus, or nothing at all."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.signals import Signal
from aetherius.store import Store
from tests.api.conftest import GENERIC_TOKEN, WEBHOOK_TOKEN, make_settings

FIXTURES = Path(__file__).parent / "fixtures"
AM = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


async def published(bus: MemoryBus) -> list[Signal]:
    deliveries = await bus.pull(durable="test-webhooks", batch=100, timeout=0.3)
    for d in deliveries:
        await d.ack()
    return [d.signal for d in deliveries]


async def test_alertmanager_firing_then_resolved(client: httpx.AsyncClient, bus: MemoryBus) -> None:
    firing = (FIXTURES / "firing.json").read_bytes()
    response = await client.post(
        "/webhooks/alertmanager", content=firing, headers={**AM, "Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3
    signals = await published(bus)
    assert [s.object.kind for s in signals] == ["Pod", "Deployment", "Node"]
    assert all(s.source == "alertmanager" and s.cluster_id == "test" for s in signals)

    resolved = json.loads((FIXTURES / "resolved.json").read_text())
    via_query = await client.post(f"/webhooks/alertmanager?token={WEBHOOK_TOKEN}", json=resolved)
    assert via_query.status_code == 401, "a token in the URL is refused unless enabled"
    assert (await client.post("/webhooks/alertmanager", json=resolved, headers=AM)).status_code == 202
    (ended,) = await published(bus)
    assert ended.resolved and ended.dedup_key == signals[0].dedup_key


async def test_repeat_notification_is_deduplicated_by_the_bus(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    body = json.loads((FIXTURES / "minimal.json").read_text())
    for _ in range(2):
        assert (await client.post("/webhooks/alertmanager", json=body, headers=AM)).status_code == 202
    assert len(await published(bus)) == 1


async def test_tokens_are_per_source(client: httpx.AsyncClient, bus: MemoryBus) -> None:
    body = json.loads((FIXTURES / "minimal.json").read_text())
    missing = await client.post("/webhooks/alertmanager", json=body)
    assert missing.status_code == 401 and missing.headers["content-type"].startswith(
        "application/problem+json"
    )
    other_source = await client.post(
        "/webhooks/alertmanager", json=body, headers={"Authorization": f"Bearer {GENERIC_TOKEN}"}
    )
    assert other_source.status_code == 401
    assert await published(bus) == []


async def test_query_tokens_work_only_when_enabled(store: Store, bus: MemoryBus) -> None:
    app = create_app(settings=make_settings(webhook_query_token=True), store=store, bus=bus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        body = json.loads((FIXTURES / "minimal.json").read_text())
        assert (
            await http.post(f"/webhooks/alertmanager?token={WEBHOOK_TOKEN}", json=body)
        ).status_code == 202


async def test_disabled_source_and_query_tokens_off(store: Store, bus: MemoryBus) -> None:
    settings = make_settings(webhook_tokens={"alertmanager": WEBHOOK_TOKEN}, webhook_query_token=False)
    app = create_app(settings=settings, store=store, bus=bus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        generic = await http.post(
            "/webhooks/generic", json={"signals": []}, headers={"Authorization": "Bearer x"}
        )
        assert generic.status_code == 403 and "api.webhook_tokens.generic" in generic.json()["detail"]
        body = json.loads((FIXTURES / "minimal.json").read_text())
        assert (
            await http.post(f"/webhooks/alertmanager?token={WEBHOOK_TOKEN}", json=body)
        ).status_code == 401


async def test_malformed_bodies_are_4xx_and_publish_nothing(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    not_json = await client.post(
        "/webhooks/alertmanager", content=b"{not json", headers={**AM, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["detail"]
    wrong_version = json.loads((FIXTURES / "firing.json").read_text()) | {"version": "3"}
    assert (await client.post("/webhooks/alertmanager", json=wrong_version, headers=AM)).status_code == 422
    # One bad alert among good ones: the whole notification is refused, none of it published.
    half_bad = json.loads((FIXTURES / "firing.json").read_text())
    half_bad["alerts"][2]["startsAt"] = "yesterday"
    response = await client.post("/webhooks/alertmanager", json=half_bad, headers=AM)
    assert response.status_code == 422 and "alerts.2.startsAt" in response.json()["detail"]
    assert (await client.post("/webhooks/alertmanager", json=[1, 2], headers=AM)).status_code == 422
    assert await published(bus) == []


async def test_oversized_webhook_is_413(store: Store, bus: MemoryBus) -> None:
    app = create_app(settings=make_settings(max_body_bytes=4096, webhook_max_alerts=2), store=store, bus=bus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        big = json.loads((FIXTURES / "firing.json").read_text())
        big["alerts"][0]["annotations"]["description"] = "x" * 8000
        assert (await http.post("/webhooks/alertmanager", json=big, headers=AM)).status_code == 413
        three = json.loads((FIXTURES / "firing.json").read_text())
        too_many = await http.post("/webhooks/alertmanager", json=three, headers=AM)
        assert too_many.status_code == 413 and "limit is 2" in too_many.json()["detail"]
    assert await published(bus) == []


async def test_bus_down_is_503_with_retry_after(store: Store) -> None:
    down = MemoryBus()
    await down.close()
    app = create_app(settings=make_settings(), store=store, bus=down)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        body = json.loads((FIXTURES / "firing.json").read_text())
        response = await http.post("/webhooks/alertmanager", json=body, headers=AM)
    assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
    assert "nothing was published" in response.json()["detail"]


async def test_generic_webhook(client: httpx.AsyncClient, bus: MemoryBus) -> None:
    body = {
        "signals": [
            {
                "id": "probe-1",
                "kind": "Service",
                "name": "db",
                "namespace": "data",
                "reason": "ServiceNoEndpoints",
                "severity": "critical",
            }
        ]
    }
    response = await client.post(
        "/webhooks/generic", json=body, headers={"Authorization": f"Bearer {GENERIC_TOKEN}"}
    )
    assert response.status_code == 202
    (signal,) = await published(bus)
    assert (signal.object.kind, signal.reason, signal.severity) == (
        "Service",
        "ServiceNoEndpoints",
        "critical",
    )
    empty = await client.post(
        "/webhooks/generic", json={"signals": []}, headers={"Authorization": f"Bearer {GENERIC_TOKEN}"}
    )
    assert empty.status_code == 422
