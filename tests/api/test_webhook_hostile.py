"""The Event Gateway under hostile input: each value is stored faithfully or refused with a 4xx
naming the field — never a 500, never a 202 for what the store would refuse, never a 503 (which a
sender such as Alertmanager retries forever) for what can never succeed. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from aetherius.bus import MemoryBus
from aetherius.store import Store
from tests.api.conftest import GENERIC_TOKEN, WEBHOOK_TOKEN

FIXTURES = Path(__file__).parent / "fixtures"
AM = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
GENERIC = {"Authorization": f"Bearer {GENERIC_TOKEN}", "Content-Type": "application/json"}
MINIMAL = json.loads((FIXTURES / "minimal.json").read_text())

# (what, a change to the first alert, "stored" or the text the 4xx must name)
ALERTS: list[tuple[str, dict[str, Any], str]] = [
    ("NUL in a label", {"labels": {"alertname": "Disk", "pod": "a\x00b"}}, "labels"),
    ("NUL in an annotation", {"annotations": {"summary": "x\x00"}}, "annotations"),
    ("lone surrogate in a label", {"labels": {"alertname": "Disk", "pod": "\ud800"}}, "labels"),
    ("lone surrogate in a label key", {"labels": {"alertname": "Disk", "\udfff": "x"}}, "labels"),
    ("past the calendar's end in UTC", {"startsAt": "9999-12-31T23:59:59-23:59"}, "startsAt"),
    ("before the calendar's start in UTC", {"startsAt": "0001-01-01T00:00:00+01:00"}, "startsAt"),
    ("the calendar's last second", {"startsAt": "9999-12-31T23:59:59Z"}, "stored"),
    ("year 1 behind UTC", {"startsAt": "0001-01-01T00:00:00-01:00"}, "stored"),
    ("an integer as a date", {"startsAt": 1764496800}, "stored"),
    ("an integer too large for a date", {"startsAt": 10**30}, "startsAt"),
    ("endsAt past the calendar", {"status": "resolved", "endsAt": "9999-12-31T23:59:59-23:59"}, "endsAt"),
    ("a 900 KB label", {"labels": {"alertname": "Disk", "blob": "x" * 900_000}}, "bytes encoded"),
    # A label that no object could be named is ignored (counted): the alert is kept, about nothing.
    ("a 300-character pod name", {"labels": {"alertname": "Disk", "pod": "p" * 300}}, "stored"),
    (
        "a pod label climbing out",
        {"labels": {"alertname": "D", "namespace": "shop", "pod": "../secrets/db"}},
        "stored",
    ),
    ("an alertname of 200 characters", {"labels": {"alertname": "A" * 200}}, "stored"),
    ("unicode everywhere", {"labels": {"alertname": "磁盘满", "pod": "ünïcödé"}}, "stored"),
]

SIGNALS: list[tuple[str, dict[str, Any], str]] = [
    ("an occurrence of 3.6e9", {"occurrence": 3_600_000_000}, "stored"),
    ("the largest storable occurrence", {"occurrence": 2**63 - 1}, "stored"),
    ("an occurrence of 10^30", {"occurrence": 10**30}, "occurrence"),
    ("a negative occurrence", {"occurrence": -1}, "occurrence"),
    ("NUL in the message", {"message": "boom\x00"}, "message"),
    ("a lone surrogate in the name", {"name": "api-\udc80"}, "name"),
    ("a name climbing out of its path", {"name": "../secrets/db"}, "object.name"),
    ("a name adding a query", {"name": "api?watch=true"}, "object.name"),
    ("a namespace with a slash", {"namespace": "shop/secrets"}, "object.namespace"),
    ("observed past the calendar", {"observed_at": "9999-12-31T23:59:59-23:59"}, "observed_at"),
]


def _raw(document: Any) -> bytes:
    """JSON as a hostile sender writes it: lone surrogates as \\uXXXX escapes, as JSON allows."""
    return json.dumps(document, ensure_ascii=True).encode()


async def _stored(bus: MemoryBus, store: Store) -> int:
    deliveries = await bus.pull(durable="hostile", batch=100, timeout=0.2)
    for delivery in deliveries:
        # NB: what the orchestrator does with every delivery first; it must not raise.
        recorded = await store.record_signal(delivery.signal)
        assert recorded.id is not None or recorded.duplicate
        await delivery.ack()
    return len(deliveries)


def _check(response: httpx.Response, expected: str, what: str) -> None:
    assert response.status_code != 500 and response.status_code != 503, (what, response.text)
    if expected == "stored":
        assert response.status_code == 202, (what, response.text)
        return
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), what
    problem = response.json()
    named = problem["detail"] + json.dumps(problem.get("errors") or [])
    assert expected in named, (what, problem)


@pytest.mark.parametrize(("what", "change", "expected"), ALERTS, ids=[a[0] for a in ALERTS])
async def test_a_hostile_alert_is_stored_faithfully_or_refused_naming_the_field(
    client: httpx.AsyncClient, bus: MemoryBus, store: Store, what: str, change: dict[str, Any], expected: str
) -> None:
    payload = copy.deepcopy(MINIMAL)
    payload["alerts"][0].update(change)
    if change.get("status") == "resolved":
        payload["status"] = "resolved"
    response = await client.post("/webhooks/alertmanager", content=_raw(payload), headers=AM)
    _check(response, expected, what)
    assert await _stored(bus, store) == (1 if expected == "stored" else 0), what


@pytest.mark.parametrize(("what", "change", "expected"), SIGNALS, ids=[s[0] for s in SIGNALS])
async def test_a_hostile_generic_signal_is_stored_faithfully_or_refused_naming_the_field(
    client: httpx.AsyncClient, bus: MemoryBus, store: Store, what: str, change: dict[str, Any], expected: str
) -> None:
    item = {"id": f"check-{what}", "name": "api-1", "namespace": "shop", "reason": "Probe", **change}
    response = await client.post("/webhooks/generic", content=_raw({"signals": [item]}), headers=GENERIC)
    _check(response, expected, what)
    assert await _stored(bus, store) == (1 if expected == "stored" else 0), what


async def test_one_unstorable_alert_refuses_the_whole_notification(
    client: httpx.AsyncClient, bus: MemoryBus, store: Store
) -> None:
    payload = copy.deepcopy(MINIMAL)
    good = copy.deepcopy(payload["alerts"][0])
    bad = {**copy.deepcopy(good), "labels": {"alertname": "Disk", "blob": "x" * 300_000}}
    payload["alerts"] = [good, bad]
    response = await client.post("/webhooks/alertmanager", content=_raw(payload), headers=AM)
    assert response.status_code == 422 and "alerts[1]" in response.json()["detail"], response.text
    assert await _stored(bus, store) == 0


async def test_a_webhook_cannot_invent_clusters(store: Store, bus: MemoryBus) -> None:
    """Each invented cluster id would be a registry row, metric labels and a diagnosis against
    the wrong cluster: only this cluster and the configured ones are accepted."""
    from aetherius.compose.app import create_app
    from tests.api.conftest import make_settings

    app = create_app(settings=make_settings(webhook_clusters=["prod-eu"]), store=store, bus=bus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        for n in range(3):
            payload = copy.deepcopy(MINIMAL)
            payload["alerts"][0]["labels"]["cluster"] = f"invented-{n}"
            refused = await http.post("/webhooks/alertmanager", content=_raw(payload), headers=AM)
            assert refused.status_code == 422 and "labels.cluster" in refused.json()["detail"], refused.text
            assert "api.webhook_clusters" in refused.json()["detail"]
        generic = {"signals": [{"id": "x", "name": "api-1", "reason": "Probe", "cluster_id": "invented"}]}
        refused = await http.post("/webhooks/generic", content=_raw(generic), headers=GENERIC)
        assert refused.status_code == 422 and "cluster_id" in refused.json()["detail"]
        assert await _stored(bus, store) == 0
        for cluster in ("prod-eu", "test"):  # configured, and this API's own
            payload = copy.deepcopy(MINIMAL)
            payload["alerts"][0]["labels"]["cluster"] = cluster
            accepted = await http.post("/webhooks/alertmanager", content=_raw(payload), headers=AM)
            assert accepted.status_code == 202, accepted.text
        assert await _stored(bus, store) == 2
