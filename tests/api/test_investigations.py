"""Investigations through the API: start, read, follow up, live progress; every failure a clear
problem. A real store (SQLite and PostgreSQL), a snapshot cluster and a scripted model server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.config import Settings
from aetherius.reasoning.budget import StoreBudget
from aetherius.reasoning.service import Investigations
from aetherius.store import Incident, Store
from tests.api.conftest import Tokens, make_settings
from tests.api.seed import seed_incident, unique_cluster
from tests.api.server import serving
from tests.reasoning.harness import FATAL, good_script, make_investigations
from tests.reasoning.scripted_llm import hang, scripted_llm, status, text, tool_calls

PROBLEM = "application/problem+json"


async def _incident(store: Store) -> Incident:
    # NB: a summary of its own, so that no other test's cached answer matches this incident
    return await seed_incident(
        store, cluster=unique_cluster(), root_cause="Unknown", summary=f"Unknown {secrets.token_hex(6)}"
    )


class Harness:
    def __init__(self, store: Store, bus: MemoryBus, tokens: Tokens) -> None:
        self.store, self.bus, self.tokens = store, bus, tokens
        self.services: list[Investigations] = []

    def client(self, service: Investigations | None, settings: Settings | None = None) -> httpx.AsyncClient:
        if service is not None:
            self.services.append(service)
        app = self.app(service, settings)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def app(self, service: Investigations | None, settings: Settings | None = None) -> FastAPI:
        return create_app(
            settings=settings or make_settings(), store=self.store, bus=self.bus, investigations=service
        )

    async def close(self) -> None:
        for service in self.services:
            await service.close()


@pytest.fixture
async def h(store: Store, bus: MemoryBus, tokens: Tokens) -> AsyncIterator[Harness]:
    harness = Harness(store, bus, tokens)
    try:
        yield harness
    finally:
        await harness.close()


def _base(incident: Incident) -> str:
    return f"/api/v1/incidents/{incident.id}/investigations"


async def _start(http: httpx.AsyncClient, h: Harness, incident: Incident, **body: Any) -> dict[str, Any]:
    r = await http.post(_base(incident), json=body, headers=h.tokens.header("operator"))
    assert r.status_code == 202, r.text
    return dict(r.json())


async def test_an_investigation_answers_as_a_report_version(h: Harness) -> None:
    incident = await _incident(h.store)
    with scripted_llm(good_script(incident.object_name)) as llm:
        service = make_investigations(h.store, llm.url, pod=incident.object_name)
        async with h.client(service) as http:
            started = await _start(http, h, incident)
            assert started["status"] == "running" and started["trigger"] == "person"
            await service.wait(started["id"])
            r = await http.get(f"{_base(incident)}/{started['id']}", headers=h.tokens.header("viewer"))
            listed = await http.get(_base(incident), headers=h.tokens.header("viewer"))
            detail = await http.get(f"/api/v1/incidents/{incident.id}", headers=h.tokens.header("viewer"))
    got = r.json()
    assert got["status"] == "done" and got["ending"] == "answered", got
    answer = got["answer"]
    assert [e["verified"] for e in answer["evidence"]] == [True, False]
    assert answer["evidence"][0]["quote"] == FATAL
    assert incident.object_name in answer["summary"]  # pseudonyms mapped back
    assert (got["tokens_in"], got["tokens_out"], got["model"]) == (200, 70, "scripted-1")
    assert got["cost"] == pytest.approx(200 * 0.00001 + 70 * 0.00003)
    assert [e["event"] for e in got["progress"]][-1] == "done" and "tool" in [
        e["event"] for e in got["progress"]
    ]
    assert [i["id"] for i in listed.json()] == [started["id"]]
    reports = detail.json()["reports"]
    assert [r["source"] for r in reports] == ["investigation", "rules"]
    latest = reports[0]
    assert (latest["model"], latest["tokens_in"], latest["tokens_out"], latest["ending"]) == (
        "scripted-1",
        200,
        70,
        "answered",
    )
    assert latest["version"] == got["report_version"] == 2
    assert latest["document"]["evidence"][1]["verified"] is False
    assert detail.json()["incident"]["root_cause"] == "Unknown"  # the rules' answer stays the incident's
    assert any(a["operation"] == "logs" for a in detail.json()["audit"])
    assert len(llm.requests) == 2


async def test_a_follow_up_keeps_the_conversation(h: Harness) -> None:
    incident = await _incident(h.store)
    follow = {"summary": "it started after the payments rollout", "root_cause": "CrashLoopBackOff"}
    with scripted_llm([*good_script(incident.object_name), text(follow)]) as llm:
        service = make_investigations(h.store, llm.url, pod=incident.object_name)
        async with h.client(service) as http:
            started = await _start(http, h, incident)
            await service.wait(started["id"])
            r = await http.post(
                f"{_base(incident)}/{started['id']}/messages",
                json={"question": f"When did {incident.object_name} start failing?"},
                headers=h.tokens.header("operator"),
            )
            assert r.status_code == 202 and r.json()["status"] == "running"
            await service.wait(started["id"])
            got = (
                await http.get(f"{_base(incident)}/{started['id']}", headers=h.tokens.header("viewer"))
            ).json()
    assert got["turns"] == 2 and got["answer"]["summary"] == follow["summary"]
    assert got["tokens_in"] == 300 and got["report_version"] == 3
    first, last = llm.requests[1]["messages"], llm.requests[2]["messages"]
    assert len(last) == len(first) + 2  # the first answer, then the question
    assert incident.object_name not in last[-1]["content"]  # the question is pseudonymized too


async def test_reasoning_disabled_or_absent_is_a_409_problem(h: Harness) -> None:
    incident = await _incident(h.store)
    disabled = make_investigations(h.store, "http://127.0.0.1:9/v1", pod=incident.object_name, enabled=False)
    for service in (None, disabled):
        async with h.client(service) as http:
            r = await http.post(_base(incident), json={}, headers=h.tokens.header("operator"))
            assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
            assert "reasoning" in r.json()["detail"] and r.json()["type"].endswith("reasoning-unavailable")
    assert "reasoning.enabled" in r.json()["detail"]


async def test_the_daily_budget_refuses_and_says_so(h: Harness) -> None:
    incident = await _incident(h.store)
    with scripted_llm(good_script(incident.object_name)) as llm:
        service = make_investigations(
            h.store, llm.url, pod=incident.object_name, budget=StoreBudget(h.store, 250)
        )
        async with h.client(service) as http:
            first = await _start(http, h, incident)
            await service.wait(first["id"])
            second = await _start(http, h, incident, question="and now?")
            detail = await http.get(f"/api/v1/incidents/{incident.id}", headers=h.tokens.header("viewer"))
    assert second["status"] == "done" and second["ending"] == "daily-budget"
    assert "daily budget" in second["answer"]["summary"] and second["tokens_in"] == 0
    assert len(llm.requests) == 2  # the refused one sent nothing
    assert [r["source"] for r in detail.json()["reports"]] == ["investigation", "rules"]  # no version for it


async def test_a_model_that_errors_ends_the_investigation_with_why(h: Harness) -> None:
    incident = await _incident(h.store)
    with scripted_llm([status(500, "boom")]) as llm:
        service = make_investigations(h.store, llm.url, pod=incident.object_name)
        async with h.client(service) as http:
            started = await _start(http, h, incident)
            await service.wait(started["id"])
            got = (
                await http.get(f"{_base(incident)}/{started['id']}", headers=h.tokens.header("viewer"))
            ).json()
    assert got["status"] == "done" and got["ending"] == "server-error"
    assert "rules' answer stands" in got["answer"]["summary"]


async def test_an_identical_investigation_is_answered_from_the_store_cache(h: Harness) -> None:
    incident = await _incident(h.store)
    with scripted_llm(good_script(incident.object_name)) as llm:
        service = make_investigations(h.store, llm.url, pod=incident.object_name)
        async with h.client(service) as http:
            first = await _start(http, h, incident)
            await service.wait(first["id"])
            second = await _start(http, h, incident)
            done = await service.wait(second["id"])
    assert done.ending == "cached" and done.tokens_in == 0 and len(llm.requests) == 2


async def test_bad_input_is_a_4xx_problem(h: Harness) -> None:
    incident = await _incident(h.store)
    other = await _incident(h.store)
    with scripted_llm([hang()]) as llm:
        service = make_investigations(h.store, llm.url, pod=incident.object_name)
        async with h.client(service) as http:
            op, viewer = h.tokens.header("operator"), h.tokens.header("viewer")
            running = await _start(http, h, incident)
            cases = [
                (await http.post("/api/v1/incidents/999999999/investigations", json={}, headers=op), 404),
                (await http.post(_base(incident), json={"prompt": "x"}, headers=op), 422),
                (await http.post(_base(incident), json={"question": "x" * 3000}, headers=op), 422),
                (await http.post(_base(incident), content=b"{not json", headers=op), 422),
                (await http.post(_base(incident), json={}, headers=viewer), 403),
                (await http.get(f"{_base(incident)}/not-an-id", headers=viewer), 422),
                (await http.get(f"{_base(incident)}/{'0' * 32}", headers=viewer), 404),
                (await http.get(f"{_base(other)}/{running['id']}", headers=viewer), 404),
                (await http.get("/api/v1/incidents/999999999/investigations", headers=viewer), 404),
                (
                    await http.post(
                        f"{_base(incident)}/{running['id']}/messages", json={"question": ""}, headers=op
                    ),
                    422,
                ),
                (
                    await http.post(
                        f"{_base(incident)}/{running['id']}/messages", json={"question": "why?"}, headers=op
                    ),
                    409,
                ),
            ]
            await service.close()
    for response, expected in cases:
        assert response.status_code == expected, (expected, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)


async def _frames(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, orjson.loads(line[6:])


async def test_progress_streams_live_until_the_answer(h: Harness) -> None:
    incident = await _incident(h.store)
    settings = make_settings(events_poll_interval=0.05)
    with scripted_llm(good_script(incident.object_name)) as llm:
        service = make_investigations(h.store, llm.url, pod=incident.object_name)
        h.services.append(service)
        async with (
            serving(h.app(service, settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            started = await _start(http, h, incident)
            seen: list[tuple[str, Any]] = []
            async with http.stream(
                "GET", f"{_base(incident)}/{started['id']}/events", headers=h.tokens.header("viewer")
            ) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                async for event, payload in _frames(response):
                    seen.append((event, payload))
                    if event == "investigation" and payload["status"] == "done":
                        break
    progress = [p["event"] for e, p in seen if e == "progress"]
    assert progress[0] == "step" and "tool" in progress and progress[-1] == "done"
    assert seen[-1][1]["ending"] == "answered" and seen[-1][1]["answer"]["evidence"][0]["verified"] is True


async def test_the_model_reads_runbooks_and_past_incidents(h: Harness) -> None:
    incident = await _incident(h.store)
    past = await seed_incident(h.store, cluster=incident.cluster_id, name="billing")
    await h.store.resolve_incident(past.id, by="ops", note="raised the billing memory limit to 1Gi")
    script = [
        tool_calls(("runbook", {"reason": "OOMKilled"}), ("similar_incidents", {})),
        text({"summary": "like before", "root_cause": "OOMKilled"}),
    ]
    with scripted_llm(script) as llm:
        service = make_investigations(h.store, llm.url, pod=incident.object_name)
        async with h.client(service) as http:
            started = await _start(http, h, incident)
            done = await service.wait(started["id"])
    assert done.ending == "answered"
    runbook, similar = (m["content"] for m in llm.requests[1]["messages"][-2:])
    assert runbook.startswith("# OOMKilled") and "How to fix" in runbook
    assert "1Gi" in similar and "billing" in similar


async def test_streams_per_token_are_capped(h: Harness) -> None:
    incident = await _incident(h.store)
    settings = make_settings(events_poll_interval=0.05, max_streams_per_token=1)
    with scripted_llm(good_script(incident.object_name)) as llm:
        service = make_investigations(h.store, llm.url, pod=incident.object_name)
        h.services.append(service)
        async with (
            serving(h.app(service, settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            started = await _start(http, h, incident)
            events = f"{_base(incident)}/{started['id']}/events"
            async with http.stream("GET", events, headers=h.tokens.header("viewer")) as first:
                frames = _frames(first)  # NB: kept: a generator dropped would close the stream
                await anext(frames)  # the first stream is open and counted
                second = await http.get(events, headers=h.tokens.header("viewer"))
            assert second.status_code == 429 and second.headers["content-type"].startswith(PROBLEM)
            assert "retry-after" in second.headers
            await frames.aclose()


async def test_a_follow_up_on_a_cached_answer_starts_a_conversation(h: Harness) -> None:
    incident = await _incident(h.store)
    fresh = {"summary": "looked again", "root_cause": "CrashLoopBackOff"}
    with scripted_llm([*good_script(incident.object_name), text(fresh)]) as llm:
        service = make_investigations(h.store, llm.url, pod=incident.object_name)
        async with h.client(service) as http:
            await service.wait((await _start(http, h, incident))["id"])
            cached = await _start(http, h, incident)
            assert (await service.wait(cached["id"])).ending == "cached"
            r = await http.post(
                f"{_base(incident)}/{cached['id']}/messages",
                json={"question": "Is the payments service up?"},
                headers=h.tokens.header("operator"),
            )
            assert r.status_code == 202
            done = await service.wait(cached["id"])
    assert done.ending == "answered" and done.answer["summary"] == "looked again" and done.turns == 2
    first_of_new = llm.requests[2]["messages"]
    assert first_of_new[0]["role"] == "system" and "Is the payments service up?" in first_of_new[1]["content"]
