"""``record_failures``: a batch of Signals in one transaction, as if upserted one at a time."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from aetherius.config import NotificationSinkSettings
from aetherius.store import InvalidTransition, Store
from tests.store.helpers import make_signal, unique, upsert_for

_COMPARED = ("signal_count", "event_count", "severity", "affected_objects", "reopen_count", "state")


def _batch(cluster: str, fingerprints: list[str], *, n: int, first: int = 1) -> list:  # type: ignore[type-arg]
    items = []
    for i in range(n):
        fingerprint = fingerprints[i % len(fingerprints)]
        signal = make_signal(
            cluster=cluster,
            pod=f"pod{(i // len(fingerprints)) % 3}",
            owner=fingerprint,
            occurrence=first + i,
            severity="critical" if i % 5 == 4 else "warning",
        )
        items.append((upsert_for(signal, fingerprint=fingerprint), signal))
    return items


def _compared(incident: object) -> dict[str, object]:
    return {name: getattr(incident, name) for name in _COMPARED}


async def test_a_batch_gives_what_one_upsert_at_a_time_gives(store: Store) -> None:
    cluster = unique("c")
    batched_fps = [unique("fp") for _ in range(3)]
    single_fps = [unique("fp") for _ in range(3)]
    batched = _batch(cluster, batched_fps, n=20)
    single = _batch(cluster, single_fps, n=20, first=1000)

    changes = await store.record_failures(batched)
    one_by_one = [await store.upsert_incident(change, signal=signal) for change, signal in single]

    assert [c.created for c in changes] == [c.created for c in one_by_one]
    assert [c.escalated for c in changes] == [c.escalated for c in one_by_one]
    assert [c.events for c in changes] == [c.events for c in one_by_one]
    assert not any(c.duplicate for c in changes)
    for batched_fp, single_fp in zip(batched_fps, single_fps, strict=True):
        a = await store.find_open_incident(batched_fp)
        b = await store.find_open_incident(single_fp)
        assert a is not None and b is not None
        assert _compared(a) == _compared(b)
        # NB: a batch's Signals share their received_at; within it the timeline is in key order
        assert sorted(s.occurrence for s in await store.incident_signals(a.id)) == sorted(
            s.occurrence - 999 for s in await store.incident_signals(b.id)
        )
    # every change carries its incident as committed after the whole batch
    last = {c.incident.fingerprint: c.incident for c in changes if c.incident is not None}
    assert all(c.incident == last[c.incident.fingerprint] for c in changes if c.incident is not None)


async def test_a_redelivered_batch_changes_nothing(store: Store) -> None:
    cluster, fingerprints = unique("c"), [unique("fp"), unique("fp")]
    items = _batch(cluster, fingerprints, n=10)
    first = await store.record_failures(items)
    # redelivered in part, together with new Signals, and one Signal twice in the same batch
    fresh = _batch(cluster, fingerprints, n=4, first=100)
    again = await store.record_failures([*items[:5], *fresh, fresh[0]])

    assert [c.duplicate for c in again] == [True] * 5 + [False] * 4 + [True]
    assert all(c.incident is not None and c.signal_id is None for c in again[:5])
    ids = {c.incident.id for c in first if c.incident is not None}
    assert {c.incident.id for c in again if c.incident is not None} == ids
    counts = {fp: (await store.find_open_incident(fp)).signal_count for fp in fingerprints}  # type: ignore[union-attr]
    assert counts == {fingerprints[0]: 7, fingerprints[1]: 7}
    assert await store.count_signals(cluster_id=cluster) == 14


async def test_a_duplicate_of_a_resolved_incident_names_no_incident(store: Store) -> None:
    cluster, fingerprint = unique("c"), unique("fp")
    items = _batch(cluster, [fingerprint], n=2)
    (change, _) = await store.record_failures(items)
    assert change.incident is not None
    await store.resolve_incident(change.incident.id, by="test")
    redelivered = await store.record_failures(items[:1])
    assert redelivered[0].duplicate and redelivered[0].incident is None
    assert await store.find_open_incident(fingerprint) is None


async def test_a_batch_reopens_a_resolved_incident_and_links_its_signals(store: Store) -> None:
    cluster, fingerprint = unique("c"), unique("fp")
    (opened,) = await store.record_failures(_batch(cluster, [fingerprint], n=1))
    assert opened.created and opened.events == ("new",) and opened.incident is not None
    await store.resolve_incident(opened.incident.id, by="test")

    changes = await store.record_failures(_batch(cluster, [fingerprint], n=3, first=10))

    assert [c.reopened for c in changes] == [True, False, False]
    assert changes[0].events == ("reopened",)
    incident = changes[-1].incident
    assert incident is not None and incident.id == opened.incident.id
    assert incident.state == "open" and incident.reopen_count == 1 and incident.signal_count == 4
    timeline = await store.incident_signals(incident.id)
    assert sorted(s.occurrence for s in timeline) == [1, 10, 11, 12]


async def test_a_batch_opens_new_incidents_and_links_their_signals(store: Store) -> None:
    cluster, fingerprint = unique("c"), unique("fp")
    (opened,) = await store.record_failures(_batch(cluster, [fingerprint], n=1))
    assert opened.incident is not None
    await store.resolve_incident(opened.incident.id, by="test")
    # resolved longer ago than reopen_within: a new incident, not a reopening
    changes = await store.record_failures(
        _batch(cluster, [fingerprint], n=2, first=5), reopen_within=timedelta(0)
    )
    assert [c.created for c in changes] == [True, False]
    fresh = changes[-1].incident
    assert fresh is not None and fresh.id != opened.incident.id and fresh.signal_count == 2
    assert sorted(s.occurrence for s in await store.incident_signals(fresh.id)) == [5, 6]


async def test_notices_are_queued_once_per_change_not_per_signal(db_url: str) -> None:
    sink = NotificationSinkSettings(name="ops", type="webhook", url="http://127.0.0.1:9/hook")
    store = await Store.open(db_url, sinks=[sink])
    try:
        cluster, fingerprint = unique("c"), unique("fp")
        items = _batch(cluster, [fingerprint], n=6)  # warning, then critical at the fifth
        changes = await store.record_failures(items)
        incident = changes[0].incident
        assert incident is not None
        events = [d.event for d in await store.list_deliveries(incident_id=incident.id)]
        assert sorted(events) == ["escalated", "new"]
    finally:
        await store.close()


async def test_concurrent_batches_of_replicas_lose_nothing_and_never_deadlock(db_url: str) -> None:
    """Three stores (three replicas' pools) write overlapping batches in different orders."""
    stores = [await Store.open(db_url, pool_size=4) for _ in range(3)]
    try:
        cluster = unique("c")
        fingerprints = [unique("fp") for _ in range(6)]
        items = _batch(cluster, fingerprints, n=240)
        rng = random.Random(7)
        batches = []
        for start in range(0, len(items), 16):
            chunk = items[start : start + 16]
            rng.shuffle(chunk)
            batches.append(chunk)

        done, first_resolution = asyncio.Event(), asyncio.Event()
        resolved = 0

        async def replica(index: int) -> None:
            for n, batch in enumerate(batches[index::3]):
                if n == 1:  # NB: the rest race a resolution really made, however fast they are
                    await first_resolution.wait()
                await stores[index].record_failures(batch)
                await stores[index].record_failures(batch[:3])  # a redelivery, racing the others

        async def resolver() -> None:
            """Resolves an incident now and then (paced, not synchronised): the batches' Signals reopen it."""
            nonlocal resolved
            while not done.is_set():
                incident = await stores[0].find_open_incident(fingerprints[0])
                if incident is not None:
                    try:
                        await stores[0].resolve_incident(incident.id, by="test")
                        resolved += 1
                        first_resolution.set()
                    except InvalidTransition:
                        pass
                await asyncio.sleep(0.01)

        resolving = asyncio.create_task(resolver())
        await asyncio.wait_for(asyncio.gather(*(replica(i) for i in range(3))), timeout=120)
        done.set()
        await resolving
        assert resolved >= 1
        store = stores[0]
        for fingerprint in fingerprints:
            # one incident per fingerprint, reopened after each resolution, every Signal counted
            (incident,) = [
                i for i in (await store.list_incidents(limit=500)).items if i.fingerprint == fingerprint
            ]
            assert incident.signal_count == 40
            assert len(await store.incident_signals(incident.id)) == 40
        assert await store.count_signals(cluster_id=cluster) == 240
    finally:
        for store in stores:
            await store.close()


async def test_an_alertmanager_sized_occurrence_is_stored_one_at_a_time_and_in_a_batch(store: Store) -> None:
    """startsAt seconds x 2 (~3.6e9) overflowed PostgreSQL's 32-bit INTEGER: every real alert was lost."""
    cluster, fingerprint = unique("c"), unique("fp")
    big = [3_528_000_000, 3_528_000_001, 2**63 - 1]
    one = make_signal(cluster=cluster, pod="p0", owner=fingerprint, occurrence=big[0])
    assert (await store.upsert_incident(upsert_for(one, fingerprint=fingerprint), signal=one)).incident
    batch = [
        make_signal(cluster=cluster, pod=f"p{n}", owner=fingerprint, occurrence=occurrence)
        for n, occurrence in enumerate(big[1:], start=1)
    ]
    changes = await store.record_failures([(upsert_for(s, fingerprint=fingerprint), s) for s in batch])
    assert not any(c.duplicate for c in changes)
    incident = await store.find_open_incident(fingerprint)
    assert incident is not None and incident.signal_count == 3
    assert sorted(s.occurrence for s in await store.incident_signals(incident.id)) == big
