"""Reports, audit, tokens, clusters, cooldown marks and retention, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from aetherius.store import AuditEntry, NotFound, Store, StoreError
from tests.store.helpers import make_signal, unique, upsert_for


async def _incident(store: Store) -> int:
    signal = make_signal(cluster=unique("c"), pod="api-1")
    change = await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
    assert change.incident is not None
    return change.incident.id


async def test_reports_are_versioned_and_carry_the_diagnosis(store: Store) -> None:
    incident_id = await _incident(store)
    first = await store.add_report(
        incident_id, document={"v": 1}, markdown="# one", root_cause="OutOfMemory", summary="killed at 256Mi"
    )
    second = await store.add_report(
        incident_id, document={"v": 2}, markdown="# two", root_cause="OutOfMemory"
    )
    assert (first.version, second.version) == (1, 2)
    versions = await store.list_reports(incident_id)
    assert [r.version for r in versions] == [2, 1] and versions[1].document == {"v": 1}
    latest = await store.latest_report(incident_id)
    assert latest is not None and latest.markdown == "# two"
    incident = await store.get_incident(incident_id)
    assert incident.root_cause == "OutOfMemory" and incident.summary == "killed at 256Mi"
    assert incident.report_version == 2
    with pytest.raises(NotFound):
        await store.add_report(10**9, document={}, markdown="")


async def test_a_report_raises_the_incidents_severity_never_lowers_it(store: Store) -> None:
    """The CLI, the dashboard and notifications show one severity: the diagnosis' when it knows
    better than the Signal (an ImagePullBackOff Event is a warning; a pod that can never start is
    critical)."""
    signal = make_signal(cluster=unique("c"), pod="web-1", severity="warning")
    change = await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
    assert change.incident is not None
    incident_id = change.incident.id
    assert (await store.get_incident(incident_id)).severity == "warning"
    await store.add_report(
        incident_id, document={}, markdown="", root_cause="ImageNotFound", severity="critical"
    )
    assert (await store.get_incident(incident_id)).severity == "critical"
    await store.add_report(incident_id, document={}, markdown="", root_cause="ImageNotFound", severity="info")
    assert (await store.get_incident(incident_id)).severity == "critical"


async def test_concurrent_rediagnoses_get_distinct_versions(store: Store) -> None:
    incident_id = await _incident(store)
    await asyncio.gather(*(store.add_report(incident_id, document={"i": i}, markdown="") for i in range(8)))
    assert sorted(r.version for r in await store.list_reports(incident_id)) == list(range(1, 9))


async def test_audit_batches_are_linked_to_what_asked(store: Store) -> None:
    incident_id = await _incident(store)
    scan = unique("scan")
    written = await store.record_audit(
        [
            AuditEntry(
                operation="get",
                resource="pods",
                namespace="shop",
                name="api-1",
                bytes=812,
                incident_id=incident_id,
            ),
            AuditEntry(
                operation="logs",
                resource="pods/log",
                namespace="shop",
                name="api-1",
                bytes=4096,
                incident_id=incident_id,
            ),
            AuditEntry(operation="list", resource="events", namespace="shop", scan_id=scan),
        ]
    )
    assert written == 3 and await store.record_audit([]) == 0
    trail = await store.list_audit(incident_id=incident_id)
    assert [(a.operation, a.bytes) for a in trail] == [("get", 812), ("logs", 4096)]
    assert [a.resource for a in await store.list_audit(scan_id=scan)] == ["events"]


async def test_tokens_are_stored_hashed_and_can_be_revoked(store: Store) -> None:
    created = await store.create_token(name=unique("ci"), role="operator")
    assert created.secret.startswith("aeth_") and len(created.secret) > 40
    listed = {t.id: t for t in await store.list_tokens()}
    assert created.token.id in listed
    assert created.secret not in repr(listed[created.token.id])
    verified = await store.verify_token(created.secret)
    assert verified is not None and verified.role == "operator"
    assert (await store.list_tokens())[-1].last_used_at is not None
    assert await store.verify_token(created.secret + "x") is None
    assert await store.verify_token("Bearer nonsense") is None
    revoked = await store.revoke_token(created.token.id)
    assert revoked.revoked_at is not None
    assert await store.verify_token(created.secret) is None
    with pytest.raises(NotFound):
        await store.revoke_token(10**9)
    with pytest.raises(StoreError, match="role must be one of"):
        await store.create_token(name="x", role="root")  # type: ignore[arg-type]


async def test_clusters_record_health_and_last_seen(store: Store) -> None:
    cluster_id = unique("prod")
    first = await store.upsert_cluster(cluster_id, detected_by="in-cluster")
    second = await store.upsert_cluster(cluster_id, watcher_health={"watching": True, "lag_s": 0.2})
    assert second.first_seen == first.first_seen and second.last_seen >= first.last_seen
    assert second.name == cluster_id and second.watcher_health == {"watching": True, "lag_s": 0.2}
    assert (await store.get_cluster(cluster_id)).detected_by == "config"
    assert cluster_id in {c.id for c in await store.list_clusters()}
    with pytest.raises(NotFound):
        await store.get_cluster(unique("nope"))


async def test_cooldown_marks_are_taken_once_until_expiry_or_new_evidence(db_url: str) -> None:
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    store = await Store.open(db_url, clock=lambda: now[0])
    try:
        key = unique("cool")
        results = await asyncio.gather(
            *(store.acquire_cooldown(key, ttl=900, evidence_hash="a") for _ in range(6))
        )
        assert sorted(results) == [False] * 5 + [True]
        assert not await store.acquire_cooldown(key, ttl=900, evidence_hash="a")
        assert await store.acquire_cooldown(key, ttl=900, evidence_hash="b")  # the evidence changed
        now[0] += timedelta(minutes=16)
        assert await store.acquire_cooldown(key, ttl=900, evidence_hash="b")  # expired
        await store.clear_cooldown(key)
        assert await store.acquire_cooldown(key, ttl=900, evidence_hash="b")
    finally:
        await store.close()


async def test_retention_prunes_old_signals_and_audit_in_batches(db_url: str) -> None:
    now = [datetime(2025, 1, 1, tzinfo=UTC)]
    store = await Store.open(db_url, clock=lambda: now[0])
    try:
        cluster = unique("c")
        for i in range(25):
            await store.record_signal(make_signal(cluster=cluster, pod="old", occurrence=i + 1))
        await store.record_audit([AuditEntry(operation="get", resource="pods", cluster_id=cluster)] * 12)
        await store.acquire_cooldown(unique("k"), ttl=1)
        now[0] += timedelta(days=40)
        await store.record_signal(make_signal(cluster=cluster, pod="new"))
        await store.record_audit([AuditEntry(operation="get", resource="pods", cluster_id=cluster)])

        result = await store.prune(older_than=timedelta(days=30), batch_size=10)
        assert result.signals >= 25 and result.audit >= 12 and result.cooldowns >= 1
        assert await store.count_signals(cluster_id=cluster) == 1
        last = await store.last_signal(cluster)
        assert last is not None and last.name == "new"
        again = await store.prune(older_than=timedelta(days=30), batch_size=10)
        assert (again.signals, again.audit) == (0, 0)
    finally:
        await store.close()
