"""Incident grouping, state changes and the dashboard's list, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from aetherius.store import (
    IncidentFilters,
    IncidentUpsert,
    InvalidCursor,
    InvalidTransition,
    NotFound,
    Store,
)
from tests.store.helpers import make_signal, unique, upsert_for


async def test_signals_of_one_failure_group_into_one_incident(store: Store) -> None:
    cluster, fingerprint = unique("c"), unique("fp")
    first = make_signal(cluster=cluster, pod="api-1", severity="warning")
    second = make_signal(cluster=cluster, pod="api-2", severity="warning")
    opened = await store.upsert_incident(upsert_for(first, fingerprint=fingerprint), signal=first)
    updated = await store.upsert_incident(upsert_for(second, fingerprint=fingerprint), signal=second)

    assert opened.created and opened.events == ("new",)
    assert not updated.created and updated.events == ()
    assert opened.incident is not None and updated.incident is not None
    assert updated.incident.id == opened.incident.id
    assert updated.incident.signal_count == 2
    assert updated.incident.version == opened.incident.version + 1
    names = [o["name"] for o in updated.incident.affected_objects]
    assert names == ["api-1", "api-2"]
    timeline = await store.incident_signals(opened.incident.id)
    assert [s.name for s in timeline] == ["api-1", "api-2"]


async def test_a_duplicate_signal_changes_nothing(store: Store) -> None:
    cluster, fingerprint = unique("c"), unique("fp")
    signal = make_signal(cluster=cluster, pod="api-1")
    first = await store.upsert_incident(upsert_for(signal, fingerprint=fingerprint), signal=signal)
    again = await store.upsert_incident(upsert_for(signal, fingerprint=fingerprint), signal=signal)
    assert again.duplicate and again.incident is None
    assert first.incident is not None
    assert (await store.get_incident(first.incident.id)).signal_count == 1
    recorded = await store.record_signal(signal)
    assert recorded.duplicate and recorded.id is None
    later = await store.record_signal(make_signal(cluster=cluster, pod="api-1", occurrence=2))
    assert not later.duplicate and later.id is not None


async def test_severity_rising_is_an_escalation(store: Store) -> None:
    cluster, fingerprint = unique("c"), unique("fp")
    warn = make_signal(cluster=cluster, pod="api-1", severity="warning")
    crit = make_signal(cluster=cluster, pod="api-1", severity="critical", occurrence=2)
    await store.upsert_incident(upsert_for(warn, fingerprint=fingerprint), signal=warn)
    change = await store.upsert_incident(upsert_for(crit, fingerprint=fingerprint), signal=crit)
    assert change.escalated and change.events == ("escalated",)
    assert change.incident is not None and change.incident.severity == "critical"
    calmer = make_signal(cluster=cluster, pod="api-1", severity="warning", occurrence=3)
    change = await store.upsert_incident(upsert_for(calmer, fingerprint=fingerprint), signal=calmer)
    assert not change.escalated and change.incident is not None and change.incident.severity == "critical"


async def test_resolved_incident_reopens_when_it_recurs(store: Store) -> None:
    cluster, fingerprint = unique("c"), unique("fp")
    signal = make_signal(cluster=cluster, pod="api-1")
    opened = await store.upsert_incident(upsert_for(signal, fingerprint=fingerprint), signal=signal)
    assert opened.incident is not None
    resolved = await store.resolve_incident(opened.incident.id, by="alice", note="raised the limit to 512Mi")
    assert resolved.state == "resolved" and resolved.resolution_note == "raised the limit to 512Mi"
    assert await store.find_open_incident(fingerprint) is None

    again = make_signal(cluster=cluster, pod="api-3", occurrence=5)
    change = await store.upsert_incident(upsert_for(again, fingerprint=fingerprint), signal=again)
    assert change.reopened and change.events == ("reopened",)
    assert change.incident is not None and change.incident.id == opened.incident.id
    assert change.incident.state == "open" and change.incident.reopen_count == 1
    assert change.incident.resolved_at is None


async def test_recurrence_after_the_reopen_window_opens_a_new_incident(store: Store) -> None:
    cluster, fingerprint = unique("c"), unique("fp")
    signal = make_signal(cluster=cluster, pod="api-1")
    opened = await store.upsert_incident(upsert_for(signal, fingerprint=fingerprint), signal=signal)
    assert opened.incident is not None
    await store.resolve_incident(opened.incident.id, by="auto")
    later = make_signal(cluster=cluster, pod="api-1", occurrence=2)
    change = await store.upsert_incident(
        upsert_for(later, fingerprint=fingerprint), signal=later, reopen_within=None
    )
    assert change.created and change.incident is not None
    assert change.incident.id != opened.incident.id


async def test_state_transitions(store: Store) -> None:
    signal = make_signal(cluster=unique("c"), pod="api-1")
    change = await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
    assert change.incident is not None
    incident_id = change.incident.id
    acked = await store.acknowledge_incident(incident_id, by="alice", note="looking")
    assert acked.state == "acknowledged" and acked.acknowledged_at is not None
    assert acked.acknowledged_by == "alice"
    again = await store.acknowledge_incident(incident_id, by="carol")
    assert again.version == acked.version and again.acknowledged_by == "alice"  # idempotent: first one kept
    assert (await store.get_incident(incident_id)).acknowledged_by == "alice"
    await store.resolve_incident(incident_id, by="bob")
    with pytest.raises(InvalidTransition):
        await store.resolve_incident(incident_id, by="bob")
    with pytest.raises(InvalidTransition):
        await store.acknowledge_incident(incident_id)
    with pytest.raises(NotFound):
        await store.get_incident(10**9)
    with pytest.raises(NotFound):
        await store.resolve_incident(10**9, by="bob")


async def test_list_filters_and_cursor_pagination_newest_first(store: Store) -> None:
    cluster = unique("c")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for i in range(7):
        ns = "shop" if i % 2 == 0 else "billing"
        severity = "critical" if i < 3 else "warning"
        signal = make_signal(cluster=cluster, pod=f"p{i}", namespace=ns, severity=severity)
        change = await store.upsert_incident(
            IncidentUpsert(
                cluster_id=cluster,
                fingerprint=unique("fp"),
                namespace=ns,
                object_kind="Pod",
                object_name=f"p{i}",
                reason="OOMKilled" if i != 6 else "FailedScheduling",
                severity=severity,
                summary=f"pod p{i} summary",
                # NB: two incidents share a timestamp so the id tie-break is exercised.
                seen_at=base + timedelta(minutes=min(i, 5)),
            ),
            signal=signal,
        )
        assert change.incident is not None
        ids.append(change.incident.id)

    everything = await store.list_incidents(IncidentFilters(cluster_id=cluster), limit=100)
    assert [i.id for i in everything.items] == [ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]]
    assert everything.next_cursor is None

    seen: list[int] = []
    cursor: str | None = None
    while True:
        page = await store.list_incidents(IncidentFilters(cluster_id=cluster), cursor=cursor, limit=3)
        seen.extend(i.id for i in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [i.id for i in everything.items]

    shop = await store.list_incidents(IncidentFilters(cluster_id=cluster, namespace="shop"))
    assert {i.object_name for i in shop.items} == {"p0", "p2", "p4", "p6"}
    critical = await store.list_incidents(IncidentFilters(cluster_id=cluster, severity="critical"))
    assert {i.object_name for i in critical.items} == {"p0", "p1", "p2"}
    sched = await store.list_incidents(IncidentFilters(cluster_id=cluster, reason="FailedScheduling"))
    assert [i.object_name for i in sched.items] == ["p6"]
    text = await store.list_incidents(IncidentFilters(cluster_id=cluster, text="P3 SUMM"))
    assert [i.object_name for i in text.items] == ["p3"]
    await store.resolve_incident(ids[0], by="x")
    unresolved = await store.list_incidents(IncidentFilters(cluster_id=cluster, unresolved=True))
    assert ids[0] not in {i.id for i in unresolved.items} and len(unresolved.items) == 6
    resolved = await store.list_incidents(IncidentFilters(cluster_id=cluster, state="resolved"))
    assert [i.id for i in resolved.items] == [ids[0]]
    with pytest.raises(InvalidCursor):
        await store.list_incidents(cursor="not-a-cursor")


async def test_list_rows_carry_the_asked_columns_then_the_cursor_columns(store: Store) -> None:
    cluster = unique("c")
    for pod in ("a", "b", "c"):
        signal = make_signal(cluster=cluster, pod=pod)
        await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
    records = await store.list_incidents(IncidentFilters(cluster_id=cluster), limit=2)
    rows = await store.list_incident_rows(
        IncidentFilters(cluster_id=cluster), columns=("object_name", "affected_objects"), limit=2
    )
    assert rows.columns == ("object_name", "affected_objects")
    expected = [(i.object_name, i.affected_objects, i.last_seen, i.id) for i in records.items]
    assert [tuple(r) for r in rows.rows] == expected
    assert rows.next_cursor == records.next_cursor is not None
    assert rows.rows[0][2].tzinfo is not None  # UTC-aware on both stores
    as_text = await store.list_incident_rows(
        IncidentFilters(cluster_id=cluster), columns=("affected_objects",), limit=2, json_text=True
    )
    assert [json.loads(r[0]) for r in as_text.rows] == [i.affected_objects for i in records.items]


async def test_concurrent_upserts_of_one_fingerprint_make_one_incident(db_url: str) -> None:
    """Three 'replicas' (separate stores and pools) racing on the same failure."""
    replicas = [await Store.open(db_url, pool_size=5) for _ in range(3)]
    try:
        cluster, fingerprint = unique("c"), unique("fp")
        signals = [make_signal(cluster=cluster, pod=f"api-{i % 4}", occurrence=i + 1) for i in range(30)]

        async def one(i: int) -> object:
            signal = signals[i]
            return await replicas[i % 3].upsert_incident(
                upsert_for(signal, fingerprint=fingerprint), signal=signal
            )

        changes = await asyncio.gather(*(one(i) for i in range(30)))
        created = [c for c in changes if getattr(c, "created", False)]
        assert len(created) == 1
        page = await replicas[0].list_incidents(IncidentFilters(cluster_id=cluster))
        assert len(page.items) == 1
        assert page.items[0].signal_count == 30
        assert len(page.items[0].affected_objects) == 4
        # Redelivery of all of them at once: nothing changes.
        again = await asyncio.gather(*(one(i) for i in range(30)))
        assert all(getattr(c, "duplicate", False) for c in again)
        assert (await replicas[1].get_incident(page.items[0].id)).signal_count == 30
    finally:
        for replica in replicas:
            await replica.close()


async def test_the_list_reconnects_when_postgresql_dropped_its_connections(postgres_url: str) -> None:
    """The list runs on the driver directly; connections the server ended (a restart, an
    administrator's pg_terminate_backend) are replaced on the next read, not answered as errors."""
    store = await Store.open(postgres_url, migrate_schema=True)
    try:
        cluster = unique("c")
        signal = make_signal(cluster=cluster, pod="api-1")
        await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
        # Several pooled reader connections, all idle in the pool afterwards.
        pages = await asyncio.gather(
            *(store.list_incidents(IncidentFilters(cluster_id=cluster)) for _ in range(4))
        )
        assert all(len(p.items) == 1 for p in pages)
        admin = await asyncpg.connect(postgres_url)
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert ended >= 1
        again = await store.list_incidents(IncidentFilters(cluster_id=cluster))
        assert [i.object_name for i in again.items] == ["api-1"]
    finally:
        await store.close()


async def test_a_store_error_never_carries_the_values_it_was_given(store: Store, db_url: str) -> None:
    """Errors are logged: the text of a failed INSERT must not quote the Signal's message."""
    signal = make_signal(cluster=unique("c"), pod="api-1")
    secret = "password=hunter2-canary"
    poisoned = type(signal)(
        **{**{f: getattr(signal, f) for f in signal.__struct_fields__}, "message": f"{secret}\x00"}
    )
    try:
        recorded = await store.record_signal(poisoned)
    except Exception as exc:  # PostgreSQL refuses NUL in text
        assert db_url.startswith("postgresql"), exc
        assert "hunter2" not in str(exc) and "hunter2" not in repr(exc.__cause__)
        assert "[SQL parameters hidden" in str(exc) or "parameters" not in str(exc)
    else:  # SQLite keeps it faithfully
        assert db_url.startswith("sqlite") and recorded.id is not None
