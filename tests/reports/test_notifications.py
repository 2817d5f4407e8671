"""Notifications through the outbox to a real HTTP receiver on loopback that fails on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from aetherius.backoff import exponential
from aetherius.config import NotificationSettings, NotificationSinkSettings
from aetherius.reports import NotificationDispatcher
from aetherius.reports.sinks import DELIVERY_HEADER, SIGNATURE_HEADER
from aetherius.store import Store
from aetherius.store.base import utcnow
from tests.receivers import SECRET, Receiver
from tests.store.helpers import make_signal, unique, upsert_for


def _settings(url: str, **sink: Any) -> NotificationSettings:
    return NotificationSettings(
        sinks=[
            NotificationSinkSettings(name="hook", type="webhook", url=f"{url}/hook", secret=SECRET, **sink),
            NotificationSinkSettings(name="chat", type="slack", url=f"{url}/slack", min_severity="critical"),
        ],
        wait_for_report=0,
        base_backoff=0.05,
        max_backoff=0.2,
        request_timeout=5,
    )


def _later(*, seconds: float) -> Callable[[], datetime]:
    """The store's clock moved on by ``seconds``: a back-off or a lease is over without sleeping."""
    return lambda: utcnow() + timedelta(seconds=seconds)


async def _drain(
    dispatcher: NotificationDispatcher, store: Store, *, incident_id: int, rounds: int = 100
) -> None:
    for _ in range(rounds):
        await dispatcher.run_once()
        if not await store.list_deliveries(incident_id=incident_id, status="pending"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries still pending")


async def test_one_notice_per_incident_not_per_signal_with_retries(db_url: str, receiver: Receiver) -> None:
    receiver.fail_first = 3
    settings = _settings(receiver.url)
    store = await Store.open(db_url, sinks=settings.sinks, wait_for_report=0)
    try:
        cluster, fingerprint = unique("c"), unique("fp")
        incident_id = 0
        for i in range(10):
            signal = make_signal(cluster=cluster, pod=f"api-{i % 2}", occurrence=i + 1, severity="warning")
            change = await store.upsert_incident(upsert_for(signal, fingerprint=fingerprint), signal=signal)
            assert change.incident is not None
            incident_id = change.incident.id
        deliveries = await store.list_deliveries(incident_id=incident_id)
        assert [(d.sink, d.event) for d in deliveries] == [("hook", "new")]  # Slack wants critical

        async with NotificationDispatcher(store, settings) as dispatcher:
            await _drain(dispatcher, store, incident_id=incident_id)
        [sent] = await store.list_deliveries(incident_id=incident_id)
        assert sent.status == "sent" and sent.attempts == 4 and sent.last_error == ""
        assert len(receiver.requests) == 4 and len(receiver.accepted) == 1
        payload = receiver.accepted[0]["json"]
        assert payload["event"] == "new" and payload["incident"]["id"] == incident_id
        assert payload["incident"]["signal_count"] == 10
        assert payload["cluster"] == payload["incident"]["cluster_id"] != ""
        ids = {r["headers"][DELIVERY_HEADER] for r in receiver.requests}
        assert ids == {str(sent.id)}  # the same delivery id on every retry

        critical = make_signal(cluster=cluster, pod="api-0", occurrence=99, severity="critical")
        change = await store.upsert_incident(upsert_for(critical, fingerprint=fingerprint), signal=critical)
        assert change.events == ("escalated",)
        async with NotificationDispatcher(store, settings) as dispatcher:
            await _drain(dispatcher, store, incident_id=incident_id)
        escalations = [
            r for r in receiver.accepted if r["json"].get("event") == "escalated" or r["path"] == "/slack"
        ]
        assert {r["path"] for r in escalations} == {"/hook", "/slack"}
        slack = next(r["json"] for r in escalations if r["path"] == "/slack")
        assert (
            slack["blocks"][0]["type"] == "header"
            and "Incident escalated" in slack["blocks"][0]["text"]["text"]
        )
        assert SIGNATURE_HEADER not in next(r for r in receiver.requests if r["path"] == "/slack")["headers"]
    finally:
        await store.close()


async def test_a_wrong_secret_is_refused_and_retried_not_lost(db_url: str, receiver: Receiver) -> None:
    settings = _settings(receiver.url)
    wrong = NotificationSettings(
        sinks=[
            NotificationSinkSettings(name="hook", type="webhook", url=f"{receiver.url}/hook", secret="wrong")
        ],
        base_backoff=0.05,
        max_backoff=0.1,
    )
    store = await Store.open(db_url, sinks=settings.sinks[:1], wait_for_report=0)
    try:
        signal = make_signal(cluster=unique("c"), pod="api-1")
        change = await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
        assert change.incident is not None
        async with NotificationDispatcher(store, wrong) as dispatcher:
            await dispatcher.run_once()
        [pending] = await store.list_deliveries(incident_id=change.incident.id)
        assert pending.status == "pending" and "401" in pending.last_error and receiver.accepted == []
        store.clock = _later(seconds=1)  # the retry is due (the back-off is at most 0.1 s)
        async with NotificationDispatcher(store, settings) as dispatcher:  # the secret is fixed
            await _drain(dispatcher, store, incident_id=change.incident.id)
        assert [r["path"] for r in receiver.accepted] == ["/hook"]
        [sent] = await store.list_deliveries(incident_id=change.incident.id)
        assert sent.status == "sent" and sent.attempts == 2
    finally:
        await store.close()


async def test_a_dispatcher_killed_mid_send_leaves_the_notice_for_the_next(
    db_url: str, receiver: Receiver
) -> None:
    receiver.hang = asyncio.Event()
    settings = _settings(receiver.url)
    store = await Store.open(db_url, sinks=settings.sinks[:1], wait_for_report=60)
    try:
        signal = make_signal(cluster=unique("c"), pod="api-1")
        change = await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
        assert change.incident is not None
        incident_id = change.incident.id
        # NB: a short lease so the test need not wait out the production margin.
        dispatcher = NotificationDispatcher(store, settings, lease=0.3)
        assert await dispatcher.run_once() == 0  # held for the report
        await store.add_report(incident_id, document={"evidence": ["limits.memory=256Mi"]}, markdown="# r")

        sending = asyncio.create_task(dispatcher.run_once())
        await asyncio.wait_for(receiver.arrived.wait(), timeout=10)
        sending.cancel()  # the process dies while the request is in flight
        with pytest.raises(asyncio.CancelledError):
            await sending
        await dispatcher.close()
        receiver.hang.set()

        second_store = await Store.open(db_url, sinks=settings.sinks[:1])
        try:
            [claimed] = await second_store.list_deliveries(incident_id=incident_id)
            assert claimed.status == "pending" and claimed.attempts == 1
            assert await second_store.claim_deliveries() == []  # still leased to the dead one
            second_store.clock = _later(seconds=1)  # the dead dispatcher's 0.3 s lease is over
            async with NotificationDispatcher(second_store, settings) as restarted:
                await _drain(restarted, second_store, incident_id=incident_id)
            [sent] = await second_store.list_deliveries(incident_id=incident_id)
            assert sent.status == "sent" and sent.attempts == 2
            assert receiver.accepted[-1]["json"]["report"]["evidence"] == ["limits.memory=256Mi"]
        finally:
            await second_store.close()
    finally:
        await store.close()


async def test_deliveries_for_a_removed_sink_are_dropped_and_counted(db_url: str, receiver: Receiver) -> None:
    settings = _settings(receiver.url)
    store = await Store.open(db_url, sinks=settings.sinks[:1], wait_for_report=0)
    try:
        signal = make_signal(cluster=unique("c"), pod="api-1")
        change = await store.upsert_incident(upsert_for(signal, fingerprint=unique("fp")), signal=signal)
        assert change.incident is not None
        async with NotificationDispatcher(store, NotificationSettings(sinks=[])) as dispatcher:
            assert await dispatcher.run_once() == 1
        [dropped] = await store.list_deliveries(incident_id=change.incident.id)
        assert dropped.status == "dropped" and "not configured" in dropped.last_error
    finally:
        await store.close()


def test_backoff_grows_exponentially_and_is_capped() -> None:
    delays = [exponential(n, base=1.0, cap=30.0) for n in range(1, 8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert 0.8 <= exponential(1, base=1.0, cap=30.0, jitter=0.2) <= 1.2


def test_sinks_are_configured_in_app_yaml_with_the_secret_from_the_environment(tmp_path: Any) -> None:
    from aetherius.config import ConfigError, load_settings

    app = tmp_path / "app.yaml"
    app.write_text(
        "notifications:\n"
        "  sinks:\n"
        "    - {name: ops, type: webhook, url: 'https://hooks.example/x', secret_env: OPS_HOOK_SECRET,"
        " events: [new], min_severity: Warning}\n"
        "    - {name: chat, type: slack, url: 'https://hooks.slack.com/services/T/B/X'}\n"
    )
    settings = load_settings(config_paths=[app], env={})
    ops, chat = settings.notifications.sinks
    assert ops.events == ["new"] and ops.min_severity == "warning"
    assert ops.resolved_secret({"OPS_HOOK_SECRET": "k"}) == "k" and ops.resolved_secret({}) == ""
    assert chat.events == ["new", "reopened", "escalated"]
    app.write_text("notifications:\n  sinks:\n    - {name: x, type: email, url: 'https://a'}\n")
    with pytest.raises(ConfigError, match=r"notifications.sinks.0.type"):
        load_settings(config_paths=[app], env={})


async def test_a_problem_with_its_root_elsewhere_is_notified_once_by_the_root(
    db_url: str, receiver: Receiver
) -> None:
    """orders and invoices fail because postgres does: their reports name postgres' incident as
    upstream, their own notices fold into it, and the root's one notice lists both."""
    settings = _settings(receiver.url)
    store = await Store.open(db_url, sinks=settings.sinks[:1], wait_for_report=60)
    try:
        cluster = unique("c")
        root_fp, orders_fp, invoices_fp = unique("postgres"), unique("orders"), unique("invoices")
        ids: dict[str, int] = {}
        for fingerprint, owner in ((root_fp, "postgres"), (orders_fp, "orders"), (invoices_fp, "invoices")):
            signal = make_signal(cluster=cluster, pod=f"{owner}-0", owner=owner, severity="warning")
            change = await store.upsert_incident(upsert_for(signal, fingerprint=fingerprint), signal=signal)
            assert change.incident is not None and change.events == ("new",)
            ids[owner] = change.incident.id
        report = {"title": "Out of memory: StatefulSet shop/postgres", "evidence": []}
        for owner in ("orders", "invoices"):
            await store.add_report(
                ids[owner],
                document=report,
                markdown="",
                root_cause="OutOfMemory",
                upstream_fingerprint=root_fp,
            )
        # A fingerprint of no open incident links nothing (yet): the notice waits for that root.
        await store.add_report(
            ids["postgres"], document=report, markdown="", upstream_fingerprint=unique("gone")
        )
        assert (await store.get_incident(ids["postgres"])).upstream_id is None
        [waiting] = await store.list_deliveries(incident_id=ids["postgres"])
        assert waiting.status == "pending" and waiting.next_attempt_at > waiting.created_at
        for owner in ("orders", "invoices"):
            linked = await store.get_incident(ids[owner])
            assert linked.upstream_id == ids["postgres"]
            [folded] = await store.list_deliveries(incident_id=ids[owner])
            assert (
                folded.status == "folded"
                and folded.last_error == f"folded into incident #{ids['postgres']} (its root cause)"
            )
        # Two incidents never name each other: the root stays the root, and its notice goes out.
        await store.add_report(ids["postgres"], document=report, markdown="", upstream_fingerprint=orders_fp)
        root = await store.get_incident(ids["postgres"])
        assert root.upstream_id is None and root.upstream_fingerprint == ""
        affected = await store.downstream_incidents(ids["postgres"])
        assert sorted(i.id for i in affected) == sorted((ids["orders"], ids["invoices"]))

        async with NotificationDispatcher(store, settings) as dispatcher:
            await _drain(dispatcher, store, incident_id=ids["postgres"])
        assert len(receiver.accepted) == 1
        payload = receiver.accepted[0]["json"]
        assert payload["incident"]["id"] == ids["postgres"]
        assert sorted(a["id"] for a in payload["affects"]) == sorted((ids["orders"], ids["invoices"]))
        for owner in ("orders", "invoices"):
            assert [d.status for d in await store.list_deliveries(incident_id=ids[owner])] == ["folded"]
    finally:
        await store.close()


async def test_a_root_opened_after_its_downstream_adopts_it(db_url: str, receiver: Receiver) -> None:
    """invoices is diagnosed first and names postgres' incident, not open yet: its notice stays
    held; when postgres' incident opens (one Signal, or a batch of them), it adopts invoices."""
    settings = _settings(receiver.url)
    store = await Store.open(db_url, sinks=settings.sinks[:1], wait_for_report=60)
    try:
        cluster, root_fp = unique("c"), unique("postgres")
        signal = make_signal(cluster=cluster, pod="invoices-0", owner="invoices", severity="warning")
        change = await store.upsert_incident(upsert_for(signal, fingerprint=unique("inv")), signal=signal)
        assert change.incident is not None
        invoices = change.incident.id
        await store.add_report(invoices, document={}, markdown="", upstream_fingerprint=root_fp)
        [held] = await store.list_deliveries(incident_id=invoices)
        assert held.status == "pending" and held.next_attempt_at > held.created_at  # still held
        root_signal = make_signal(cluster=cluster, pod="postgres-0", owner="postgres", severity="critical")
        [opened] = await store.record_failures([(upsert_for(root_signal, fingerprint=root_fp), root_signal)])
        assert opened.created and opened.incident is not None
        adopted = await store.get_incident(invoices)
        assert adopted.upstream_id == opened.incident.id
        assert [d.status for d in await store.list_deliveries(incident_id=invoices)] == ["folded"]
    finally:
        await store.close()
