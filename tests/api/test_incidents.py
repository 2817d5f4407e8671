"""Incidents through the API on both stores: filters, pages, detail, acting on them."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from aetherius.api.schemas import IncidentOut, IncidentPage
from aetherius.bus import MemoryBus
from aetherius.store import Store
from aetherius.store.records import IncidentFilters
from tests.api.conftest import Tokens
from tests.api.seed import seed_incident, seed_many, unique_cluster


async def test_list_filters_and_cursor_pages_newest_first(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    cluster = unique_cluster()
    made = await seed_many(store, cluster=cluster, count=7)
    viewer = tokens.header("viewer")
    seen: list[int] = []
    cursor = None
    while True:
        params = {"cluster": cluster, "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/incidents", params=params, headers=viewer)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i.id for i in reversed(made)]

    critical = (
        await client.get(
            "/api/v1/incidents", params={"cluster": cluster, "severity": "critical"}, headers=viewer
        )
    ).json()
    assert {i["severity"] for i in critical["items"]} == {"critical"} and len(critical["items"]) == 3
    data_ns = (
        await client.get(
            "/api/v1/incidents", params={"cluster": cluster, "namespace": "data"}, headers=viewer
        )
    ).json()
    assert len(data_ns["items"]) == 4
    text = (
        await client.get("/api/v1/incidents", params={"cluster": cluster, "q": "svc3"}, headers=viewer)
    ).json()
    assert [i["owner_name"] for i in text["items"]] == ["svc3"]
    none = (
        await client.get(
            "/api/v1/incidents", params={"cluster": cluster, "state": "resolved"}, headers=viewer
        )
    ).json()
    assert none == {"items": [], "next_cursor": None}


async def test_detail_has_reports_timeline_and_audit(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    incident = await seed_incident(store, cluster=unique_cluster())
    detail = (await client.get(f"/api/v1/incidents/{incident.id}", headers=tokens.header("viewer"))).json()
    assert detail["incident"]["root_cause"] == "OutOfMemory"
    assert (
        detail["reports"][0]["version"] == 1
        and "OOMKilled" in detail["reports"][0]["document"]["evidence"][0]
    )
    assert len(detail["signals"]) == 1 and detail["signals"][0]["reason"] == "CrashLoopBackOff"
    assert [a["operation"] for a in detail["audit"]] == ["get", "logs"]
    missing = await client.get("/api/v1/incidents/999999999", headers=tokens.header("viewer"))
    assert missing.status_code == 404


async def test_acknowledge_then_resolve_feeds_knowledge(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    incident = await seed_incident(
        store, cluster=unique_cluster(), summary="Pod zebrafish-api ran out of memory"
    )
    op = tokens.header("operator")
    acked = await client.post(
        f"/api/v1/incidents/{incident.id}/acknowledge", json={"note": "on it"}, headers=op
    )
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"].startswith("operator-") and acked.json()["acknowledged_at"]
    detail = (await client.get(f"/api/v1/incidents/{incident.id}", headers=op)).json()
    assert detail["incident"]["acknowledged_by"] == acked.json()["acknowledged_by"]
    resolved = await client.post(
        f"/api/v1/incidents/{incident.id}/resolve",
        json={"note": "raised limit to 512Mi for zebrafish"},
        headers=op,
    )
    assert resolved.json()["state"] == "resolved" and resolved.json()["resolved_by"].startswith("operator-")
    twice = await client.post(f"/api/v1/incidents/{incident.id}/resolve", json={"note": ""}, headers=op)
    assert twice.status_code == 409 and twice.headers["content-type"].startswith("application/problem+json")
    hits = (await client.get("/api/v1/knowledge", params={"q": "zebrafish"}, headers=op)).json()
    assert any(h["incident_id"] == incident.id for h in hits)
    extra = await client.post(
        f"/api/v1/incidents/{incident.id}/resolve", json={"note": "x", "bogus": 1}, headers=op
    )
    assert extra.status_code == 422


async def test_rediagnose_publishes_a_request_signal(
    client: httpx.AsyncClient, store: Store, bus: MemoryBus, tokens: Tokens
) -> None:
    incident = await seed_incident(store, cluster=unique_cluster())
    response = await client.post(
        f"/api/v1/incidents/{incident.id}/rediagnose", headers=tokens.header("operator")
    )
    assert response.status_code == 202
    deliveries = await bus.pull(durable="test-rediagnose", batch=10, timeout=1.0)
    requests = [d.signal for d in deliveries if d.signal.reason == "RediagnoseRequested"]
    assert len(requests) == 1 and requests[0].labels["aetherius.io/rediagnose"] == str(incident.id)
    assert requests[0].msg_id == response.json()["msg_id"]


async def test_clusters_list_and_detail(client: httpx.AsyncClient, store: Store, tokens: Tokens) -> None:
    cluster = unique_cluster()
    await store.upsert_cluster(cluster, name="Prod EU", detected_by="config", watcher_health={"status": "ok"})
    await seed_incident(store, cluster=cluster)
    viewer = tokens.header("viewer")
    listed = (await client.get("/api/v1/clusters", headers=viewer)).json()
    assert any(c["id"] == cluster and c["name"] == "Prod EU" for c in listed)
    detail = (await client.get(f"/api/v1/clusters/{cluster}", headers=viewer)).json()
    assert detail["open_incidents"] == 1 and detail["last_signal"]["reason"] == "CrashLoopBackOff"
    assert detail["watcher_health"] == {"status": "ok"}
    assert (await client.get("/api/v1/clusters/nope-nope", headers=viewer)).status_code == 404


async def test_sinks_are_shown_without_credentials(client: httpx.AsyncClient, tokens: Tokens) -> None:
    assert (await client.get("/api/v1/sinks", headers=tokens.header("admin"))).json() == []


async def test_list_json_is_exactly_what_the_schema_model_writes(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    """The list is serialized without pydantic (speed); it must not drift from ``IncidentPage``."""
    cluster = unique_cluster()
    await seed_many(store, cluster=cluster, count=3)
    # NB: a whole second (no microseconds) and non-ASCII text: where encoders differ most.
    await seed_incident(
        store,
        cluster=cluster,
        name="whole",
        summary="naïve “quoted” ☃",
        seen_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    made = await seed_incident(store, cluster=cluster, name="acked")
    await store.acknowledge_incident(made.id, note="looking")
    response = await client.get(
        "/api/v1/incidents", params={"cluster": cluster, "limit": "3"}, headers=tokens.header("viewer")
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    page = await store.list_incidents(IncidentFilters(cluster_id=cluster), limit=3)
    expected = IncidentPage(
        items=[IncidentOut.model_validate(i) for i in page.items], next_cursor=page.next_cursor
    )
    assert response.json() == expected.model_dump(mode="json")
    items = response.json()["items"]
    assert items[0]["last_seen"] == "2030-01-01T00:00:00Z" and items[0]["summary"] == "naïve “quoted” ☃"
    assert items[1]["acknowledged_at"].endswith("Z") and response.json()["next_cursor"]
