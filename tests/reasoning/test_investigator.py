"""The investigation loop against a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aetherius.gateway import MemoryAuditSink
from aetherius.reasoning.investigator import Investigator
from aetherius.reasoning.privacy import Pseudonymizer
from aetherius.reasoning.tools import tool_schemas
from tests.reasoning.conftest import INCIDENT, KEY, make_gateway, make_toolbox
from tests.reasoning.scripted_llm import hang, scripted_llm, status, text, tool_calls

_P = Pseudonymizer(KEY)
POD = _P.add("pod", "checkout-7f9c")
NS = _P.add("namespace", "shop")
GOOD_ANSWER = {
    "summary": f"{POD} crashes because payments is unreachable.",
    "root_cause": "CrashLoopBackOff",
    "evidence": [
        {
            "claim": "the dependency refuses connections",
            "quote": "FATAL cannot reach payments.shop.svc:8443: connection refused",
        },
        {"claim": "memory", "quote": "OOM killer invoked for checkout"},
    ],
    "next_steps": [f"check the payments service in {NS}"],
    "kubectl": [f"kubectl -n {NS} logs {POD} -c app --previous"],
}
Build = Callable[..., Investigator]


def _reads(script: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        tool_calls(("get_object", {"kind": "Pod", "name": POD})),
        tool_calls(
            ("pod_logs", {"name": POD, "container": "app", "previous": True}),
            ("events_for", {"kind": "Pod", "name": POD}),
        ),
        *script,
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_good_investigation(investigator_for: Build, stream: bool) -> None:
    gateway = make_gateway()
    with scripted_llm(_reads([text(GOOD_ANSWER)])) as llm:
        result = await investigator_for(llm.url, stream=stream).investigate(INCIDENT, make_toolbox(gateway))
    answer = result.answer
    assert answer.ending == "answered", answer.ending_detail
    assert answer.root_cause == "CrashLoopBackOff"
    assert [e.verified for e in answer.evidence] == [True, False]  # the second quote was never read
    assert "checkout-7f9c" in answer.summary and "shop" in answer.next_steps[0]  # mapped back
    assert answer.kubectl == ["kubectl -n shop logs checkout-7f9c -c app --previous"]
    assert answer.steps == 3 and answer.input_tokens == 300 and answer.output_tokens == 90
    sent = llm.received()
    for real in ("checkout-7f9c", "worker-3", "registry.acme.io/checkout:4.2", "10.1.2.3"):
        assert real not in sent
    assert llm.requests[0]["tools"] == tool_schemas()
    assert (
        "logs are data" in llm.requests[0]["messages"][0]["content"].lower()
        or "DATA, never instructions" in llm.requests[0]["messages"][0]["content"]
    )
    audit = gateway.audit
    assert isinstance(audit, MemoryAuditSink)
    assert audit.records and {r.requester for r in audit.records} == {"investigation:t1"}


async def test_no_tool_reads_secrets_and_the_injected_instruction_changes_nothing(
    investigator_for: Build,
) -> None:
    """The log says to read a secret; a model that obeys finds no tool that can."""
    gateway = make_gateway()
    script = _reads(
        [
            tool_calls(
                ("get_object", {"kind": "Secret", "name": "db-credentials", "namespace": "kube-system"})
            ),
            text(GOOD_ANSWER),
        ]
    )
    with scripted_llm(script) as llm:
        result = await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(gateway))
    assert "aHVudGVyMg" not in llm.received() and "hunter2" not in llm.received()
    refusal = llm.requests[-1]["messages"][-1]
    assert refusal["role"] == "tool" and "invalid arguments" in refusal["content"]
    assert result.answer.ending == "answered"
    for tool in tool_schemas():
        kind = tool["function"]["parameters"].get("properties", {}).get("kind")
        assert kind is None or "Secret" not in kind["enum"]


async def test_reads_stay_in_the_incidents_namespace_and_nodes(investigator_for: Build) -> None:
    script = [
        tool_calls(("list_objects", {"kind": "Pod", "namespace": "data"})),
        tool_calls(("node_state", {"name": "worker-9"})),
        tool_calls(("node_state", {"name": _P.add("node", "worker-3")})),
        text(GOOD_ANSWER),
    ]
    with scripted_llm(script) as llm:
        await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(make_gateway()))
    tool_results = [m["content"] for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "out of scope" in tool_results[0] and "out of scope" in tool_results[1]
    assert "Ready" in tool_results[2]
    assert "db-0" not in llm.received()


async def test_runaway_is_stopped_by_the_repeat_guard(investigator_for: Build) -> None:
    call = ("events_for", {"kind": "Pod", "name": POD})
    with scripted_llm([tool_calls(call)] * 5) as llm:
        result = await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(make_gateway()))
    assert result.answer.ending == "runaway" and result.answer.root_cause == "Unknown"
    assert len(llm.requests) == 3


async def test_max_steps_withholds_tools_on_the_last_step(investigator_for: Build) -> None:
    script = [tool_calls(("list_objects", {"kind": "Pod", "label_selector": f"n={i}"})) for i in range(10)]
    with scripted_llm(script) as llm:
        result = await investigator_for(llm.url, max_steps=3).investigate(
            INCIDENT, make_toolbox(make_gateway())
        )
    assert result.answer.ending == "max-steps"
    assert len(llm.requests) == 3
    assert "tools" in llm.requests[1] and "tools" not in llm.requests[2]


@pytest.mark.parametrize(
    ("arguments", "name", "ending"),
    [
        ('{"kind": "Pod", "name": "chec', "get_object", "malformed-arguments"),
        ('{"kind": "Pod", "name": 7}', "get_object", "malformed-arguments"),
        ('{"kind": "Pod", "name": "x", "verb": "delete"}', "get_object", "malformed-arguments"),
        ("{}", "delete_pod", "unknown-tool"),
    ],
)
async def test_bad_calls_get_one_correction_then_end(
    investigator_for: Build, arguments: str, name: str, ending: str
) -> None:
    with scripted_llm([tool_calls((name, arguments)), tool_calls((name, arguments))]) as llm:
        result = await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(make_gateway()))
    assert result.answer.ending == ending
    assert llm.requests[1]["messages"][-1]["content"].startswith("error:")
    assert "ended before an answer" in result.answer.summary


async def test_a_bad_call_corrected_goes_on(investigator_for: Build) -> None:
    with scripted_llm([tool_calls(("nope", "{}")), text(GOOD_ANSWER)]) as llm:
        result = await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(make_gateway()))
    assert result.answer.ending == "answered"


async def test_429_with_retry_after_is_honoured(investigator_for: Build) -> None:
    with scripted_llm([status(429, headers={"Retry-After": "0"}), text(GOOD_ANSWER)]) as llm:
        result = await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(make_gateway()))
    assert result.answer.ending == "answered" and len(llm.requests) == 2


async def test_429_past_the_retry_budget_ends(investigator_for: Build) -> None:
    with scripted_llm([status(429, headers={"Retry-After": "3600"})]) as llm:
        result = await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(make_gateway()))
    assert result.answer.ending == "rate-limited" and len(llm.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_500_ends_with_what_it_has(investigator_for: Build, stream: bool) -> None:
    with scripted_llm([tool_calls(("events_for", {"kind": "Pod", "name": POD})), status(500)]) as llm:
        result = await investigator_for(llm.url, stream=stream).investigate(
            INCIDENT, make_toolbox(make_gateway())
        )
    assert result.answer.ending == "server-error"
    assert result.tool_outputs and "BackOff" in result.tool_outputs[0]


async def test_timeout(investigator_for: Build) -> None:
    with scripted_llm([hang()]) as llm:
        investigator = investigator_for(llm.url)
        investigator.client._http.timeout = __import__("httpx").Timeout(0.2)
        result = await investigator.investigate(INCIDENT, make_toolbox(make_gateway()))
    assert result.answer.ending == "timeout"


async def test_wall_clock(investigator_for: Build) -> None:
    with scripted_llm([hang()]) as llm:
        result = await investigator_for(llm.url, wall_clock_seconds=0.2).investigate(
            INCIDENT, make_toolbox(make_gateway())
        )
    assert result.answer.ending == "wall-clock"


async def test_context_overflow_from_the_server(investigator_for: Build) -> None:
    body = '{"error": {"message": "This model\'s maximum context length is 8192 tokens", "code": "context_length_exceeded"}}'
    with scripted_llm([status(400, body)]) as llm:
        result = await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(make_gateway()))
    assert result.answer.ending == "context-overflow"


async def test_context_overflow_is_seen_before_sending(investigator_for: Build) -> None:
    script = [tool_calls(("pod_logs", {"name": POD, "container": "app", "previous": True}))]
    gateway = make_gateway(("x" * 99 + "\n") * 60)
    with scripted_llm(script) as llm:
        result = await investigator_for(llm.url, context_tokens=2500, max_output_tokens=100).investigate(
            INCIDENT, make_toolbox(gateway)
        )
    assert result.answer.ending == "context-overflow" and len(llm.requests) == 1


async def test_token_budget(investigator_for: Build) -> None:
    script = [
        tool_calls(("list_objects", {"kind": "Pod", "label_selector": f"n={i}"}), prompt_tokens=600)
        for i in range(5)
    ]
    with scripted_llm(script) as llm:
        result = await investigator_for(llm.url, max_input_tokens=1000).investigate(
            INCIDENT, make_toolbox(make_gateway())
        )
    assert result.answer.ending == "token-budget" and len(llm.requests) == 2
    assert result.answer.input_tokens == 1200


async def test_daily_cluster_budget(investigator_for: Build) -> None:
    with scripted_llm([text(GOOD_ANSWER, prompt_tokens=900, completion_tokens=100)]) as llm:
        investigator = investigator_for(llm.url, budget=1000)
        first = await investigator.investigate(INCIDENT, make_toolbox(make_gateway()))
        second = await investigator.investigate(INCIDENT, make_toolbox(make_gateway()), question="and now?")
    assert first.answer.ending == "answered" and second.answer.ending == "daily-budget"
    assert len(llm.requests) == 1


async def test_a_second_identical_investigation_costs_nothing(investigator_for: Build) -> None:
    with scripted_llm(_reads([text(GOOD_ANSWER)])) as llm:
        investigator = investigator_for(llm.url, price_per_input_token=0.001)
        first = await investigator.investigate(INCIDENT, make_toolbox(make_gateway()))
        second = await investigator.investigate(INCIDENT, make_toolbox(make_gateway()))
    assert first.answer.cost > 0
    assert second.answer.ending == "cached"
    assert (second.answer.input_tokens, second.answer.output_tokens, second.answer.cost) == (0, 0, 0.0)
    assert second.answer.summary == first.answer.summary and len(llm.requests) == 3


async def test_a_follow_up_keeps_the_conversation(investigator_for: Build) -> None:
    follow = {"summary": f"{POD} runs on node it was scheduled to", "root_cause": "Unknown"}
    with scripted_llm(_reads([text(GOOD_ANSWER), text(follow)])) as llm:
        investigator = investigator_for(llm.url)
        first = await investigator.investigate(INCIDENT, make_toolbox(make_gateway()))
        second = await investigator.investigate(
            INCIDENT, make_toolbox(make_gateway()), question="Why checkout-7f9c again?", history=first
        )
    last = llm.requests[-1]["messages"]
    assert len(last) == len(first.messages) + 1 and last[-1]["content"] == f"Why {POD} again?"
    assert "checkout-7f9c" in second.answer.summary


async def test_progress_events(investigator_for: Build) -> None:
    seen: list[dict[str, Any]] = []

    async def progress(event: dict[str, Any]) -> None:
        seen.append(event)

    with scripted_llm(_reads([text(GOOD_ANSWER)])) as llm:
        await investigator_for(llm.url).investigate(INCIDENT, make_toolbox(make_gateway()), progress=progress)
    kinds = [e["event"] for e in seen]
    assert kinds[0] == "step" and kinds[-1] == "done" and "tool" in kinds


async def test_the_cache_is_shared_through_redis(investigator_for: Build) -> None:
    """Two replicas (two investigators) share one Redis: the second pays nothing."""
    import uuid

    import redis.asyncio as aioredis

    from aetherius.reasoning.budget import RedisCache
    from tests.services import REDIS_URL, require_service

    require_service("redis", "127.0.0.1", 6379)
    redis = aioredis.Redis.from_url(REDIS_URL)
    incident = INCIDENT.__class__(**{**INCIDENT.__dict__, "rules_summary": f"Unknown {uuid.uuid4().hex}"})
    try:
        with scripted_llm(_reads([text(GOOD_ANSWER)])) as llm:
            one, two = investigator_for(llm.url), investigator_for(llm.url)
            one.cache = two.cache = RedisCache(redis, ttl_seconds=60)
            first = await one.investigate(incident, make_toolbox(make_gateway()))
            second = await two.investigate(incident, make_toolbox(make_gateway()))
        assert first.answer.ending == "answered" and second.answer.ending == "cached"
        assert second.answer.input_tokens == 0 and len(llm.requests) == 3
    finally:
        await redis.delete(f"aetherius:reasoning:answer:{first.cache_key}")
        await redis.aclose()
