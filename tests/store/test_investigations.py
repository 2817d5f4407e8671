"""Investigations in the store (SQLite and PostgreSQL): answers as report versions that never take
the rules' place, progress numbered past its cap, a dead turn that no longer blocks, pruning."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aetherius.store import InvalidTransition, NotFound, Store
from aetherius.store.investigations import MAX_PROGRESS
from tests.api.seed import seed_incident, unique_cluster

ANSWER = {
    "summary": "payments refuses connections",
    "root_cause": "CrashLoopBackOff",
    "evidence": [{"claim": "c", "quote": "q", "verified": True}],
    "ending": "answered",
    "model": "m-1",
    "input_tokens": 120,
    "output_tokens": 30,
    "cost": 0.5,
}


async def test_an_answer_is_a_report_version_beside_the_rules(store: Store) -> None:
    incident = await seed_incident(store, cluster=unique_cluster(), root_cause="Unknown", summary="nothing")
    with pytest.raises(NotFound):
        await store.create_investigation(2**62)
    record = await store.create_investigation(incident.id, trigger="auto", requested_by="aetherius")
    assert (record.status, record.cluster_id) == ("running", incident.cluster_id)
    done = await store.finish_investigation(
        record.id, answer=ANSWER, conversation={"messages": [1]}, report={"source": "investigation"}
    )
    again = await store.begin_investigation_turn(record.id, question="why?")
    done = await store.finish_investigation(record.id, answer=ANSWER, conversation={}, report={"x": 1})
    assert (again.status, done.status, done.turns, done.report_version) == ("running", "done", 2, 3)
    assert (done.tokens_in, done.tokens_out, done.cost) == (240, 60, 1.0)
    reports = await store.list_reports(incident.id)
    assert [(r.version, r.source) for r in reports] == [
        (3, "investigation"),
        (2, "investigation"),
        (1, "rules"),
    ]
    assert (reports[0].model, reports[0].tokens_in, reports[0].tokens_out, reports[0].ending) == (
        "m-1",
        120,
        30,
        "answered",
    )
    rules = await store.latest_report(incident.id)
    assert rules is not None and rules.version == 1
    latest = await store.latest_report(incident.id, source=None)
    assert latest is not None and latest.version == 3
    after = await store.get_incident(incident.id)
    assert (after.root_cause, after.summary, after.report_version) == ("Unknown", "nothing", 1)
    assert after.version > incident.version  # open pages hear of the answer
    assert [i.id for i in await store.list_investigations(incident.id)] == [record.id]


async def test_progress_is_numbered_past_its_cap(store: Store) -> None:
    incident = await seed_incident(store, cluster=unique_cluster())
    record = await store.create_investigation(incident.id)
    for step in range(MAX_PROGRESS + 50):
        await store.add_investigation_progress(record.id, {"event": "step", "step": step})
    progress = (await store.get_investigation(record.id)).progress
    assert len(progress) == MAX_PROGRESS
    assert (progress[0]["n"], progress[-1]["n"]) == (51, MAX_PROGRESS + 50)


async def test_a_running_turn_blocks_a_follow_up_until_it_is_silent_too_long(store: Store) -> None:
    incident = await seed_incident(store, cluster=unique_cluster())
    record = await store.create_investigation(incident.id)
    with pytest.raises(InvalidTransition):
        await store.begin_investigation_turn(record.id, question="and?")
    taken = await store.begin_investigation_turn(record.id, question="and?", stale_after=-1)
    assert taken.status == "running" and taken.progress[-1]["event"] == "question"
    with pytest.raises(NotFound):
        await store.begin_investigation_turn("0" * 32, question="?")


async def test_the_pruner_forgets_expired_answers_and_past_days(store: Store) -> None:
    await store.cache_answer("old", "x", ttl=-10)
    await store.cache_answer("new", "y", ttl=3600)
    await store.spend_tokens("c-prune", day="2020-01-01", tokens=5)
    assert await store.spend_tokens("c-prune", day="2999-01-01", tokens=5) == 5
    result = await store.prune(older_than=timedelta(days=30))
    assert result.extra["reasoning_answers"] >= 1
    assert await store.cached_answer("new") == "y" and await store.cached_answer("old") is None
    assert await store.spent_tokens("c-prune", day="2020-01-01") == 0
    assert await store.spent_tokens("c-prune", day="2999-01-01") == 5
