"""The incident page as a person at 3 a.m. reads it: what broke in words, the log lines that prove
it, who acknowledged it and why, and runbook commands filled in with this incident's names."""

from __future__ import annotations

import httpx

from aetherius.store import Store
from tests.api.conftest import Tokens
from tests.api.seed import seed_incident, unique_cluster
from tests.web.test_sessions import csrf_of, login


async def test_the_incident_page_says_it_first_and_fills_the_runbook(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    incident = await seed_incident(store, cluster=unique_cluster(), reason="BackOff", with_report=False)
    pod = incident.object_name
    document = {
        "title": "Out of memory: Deployment shop/api",
        "summary": "Container api is killed for exceeding its 256Mi memory limit and restarts in a loop.",
        "evidence": [
            "lastState.terminated.reason=OOMKilled exitCode=137",
            "log (previous instance): java.lang.OutOfMemoryError: Java heap space <script>x</script>",
        ],
        "findings": [
            {
                "kind": "Pod",
                "namespace": "shop",
                "name": pod,
                "container": "api",
                "reason": "CrashLoopBackOff",
                "root_cause": "OutOfMemory",
            }
        ],
        "runbook": {"slug": "oom-killed", "title": "OOMKilled", "source": "shipped"},
    }
    await store.add_report(
        incident.id, document=document, markdown="", root_cause="OutOfMemory", summary=document["summary"]
    )
    await login(client, tokens.operator)
    page = (await client.get(f"/incidents/{incident.id}")).text
    # The title is the root cause in words, not the Event's reason.
    assert (
        f"#{incident.id} Out of memory: Deployment shop/api" in page and f"#{incident.id} BackOff" not in page
    )
    # The log line that proves it, shown (and escaped).
    assert 'data-testid="log-lines"' in page and "java.lang.OutOfMemoryError: Java heap space" in page
    assert "<script>x</script>" not in page
    assert page.count("java.lang.OutOfMemoryError") == 1, "said once, not again under Evidence"
    # The runbook's commands name this pod, not POD; what is not known stays a placeholder.
    assert f"kubectl get pod -n shop {pod} -o jsonpath" in page and "-n NS POD" not in page
    # Acknowledged with a note: who and why, visible before it is resolved.
    response = await client.post(
        f"/incidents/{incident.id}/acknowledge",
        data={"note": "scaling the heap down, watching it", "csrf_token": csrf_of(page)},
    )
    assert response.status_code == 303
    page = (await client.get(f"/incidents/{incident.id}")).text
    assert 'data-testid="acknowledged"' in page and "scaling the heap down, watching it" in page


def test_the_timeline_folds_what_repeats_and_says_its_cap() -> None:
    from types import SimpleNamespace

    from aetherius.web.views import timeline

    def signal(i: int, reason: str, count: int, message: str, name: str = "api-1") -> SimpleNamespace:
        stamp = f"2026-12-05T10:{i:02d}:00Z"
        return SimpleNamespace(
            id=i, reason=reason, kind="Pod", name=name, severity="warning", count=count,
            first_seen=stamp, last_seen=stamp, message=message,
        )  # fmt: skip

    uid = "(0f1e2d3c-0000-4000-8000-00000000000{})"
    signals = [
        signal(
            i,
            "BackOff",
            i + 1,
            f"Back-off restarting failed container api in pod api-1_shop{uid.format(i % 3)}",
        )
        for i in range(19)
    ]
    signals += [signal(30, "CrashLoopBackOff", 1, "container api: back-off 5m0s restarting failed container")]
    signals += [signal(31, "BackOff", 1, "Back-off restarting failed container api", name="api-2")]
    rows, note = timeline(signals, limit=500)
    # The kubelet's BackOff and the pod's CrashLoopBackOff say the same crash loop: one row.
    assert [(r.reason, r.name, r.signals, r.times) for r in rows] == [
        ("CrashLoopBackOff", "api-1", 20, 19),
        ("CrashLoopBackOff", "api-2", 1, 1),
    ]
    assert rows[0].first == "2026-12-05T10:00:00Z" and rows[0].last == "2026-12-05T10:30:00Z"
    assert rows[0].since == "10:00:00 UTC"
    assert "0f1e2d3c" not in rows[0].message and note == ""
    _, capped = timeline(signals, limit=len(signals))
    assert capped == f"The newest {len(signals)} Signals are shown; older ones are in the API."


def test_ready_between_restarts_is_not_said_as_a_recovery() -> None:
    from types import SimpleNamespace

    from aetherius.web.views import timeline

    def signal(i: int, message: str, *, resolved: bool, name: str = "api-1") -> SimpleNamespace:
        stamp = f"2026-12-05T10:{i:02d}:00Z"
        return SimpleNamespace(
            id=i, reason="CrashLoopBackOff", kind="Pod", name=name, severity="info" if resolved else "critical",
            count=1, first_seen=stamp, last_seen=stamp, message=message, resolved=resolved,
        )  # fmt: skip

    loop = []
    for i in range(0, 12, 2):
        loop.append(signal(i, "container api: back-off restarting failed container", resolved=False))
        loop.append(signal(i + 1, "pod api-1 is Ready again: CrashLoopBackOff cleared", resolved=True))
    loop.append(signal(20, "container api: back-off restarting failed container", resolved=False))
    # another pod that really recovered, and stayed so
    loop.append(
        signal(3, "container api: back-off restarting failed container", resolved=False, name="api-2")
    )
    loop.append(signal(4, "pod api-2 is Ready again: CrashLoopBackOff cleared", resolved=True, name="api-2"))
    rows, _ = timeline(loop, limit=500)
    messages = {(r.name, r.message) for r in rows}
    assert ("api-1", "pod api-1 was Ready 6 times between restarts, and failed again after") in messages
    assert ("api-2", "pod api-2 is Ready again: CrashLoopBackOff cleared") in messages
    assert len(rows) == 4, "one row per thing that happened"


def test_an_oom_crash_loop_reads_as_three_things() -> None:
    """What the demo's checkout pod reports: OOM kills, the back-off said by the pod and by the
    kubelet, and "Ready again" after each cleared reason; three things, not one row per wording."""
    from types import SimpleNamespace

    from aetherius.web.views import timeline

    pod, uid = "checkout-5f6c9d8b7a-d061x", "(d458a16b-7cf2-506b-a256-8a102110616d)"
    signals = []

    def add(second: int, reason: str, count: int, message: str, *, resolved: bool = False) -> None:
        stamp = f"2026-12-05T19:59:{second:02d}Z"
        signals.append(
            SimpleNamespace(
                id=len(signals), reason=reason, kind="Pod", name=pod, count=count, resolved=resolved,
                severity="info" if resolved else "critical", first_seen=stamp, last_seen=stamp, message=message,
            )
        )  # fmt: skip

    for n in range(1, 5):
        at = n * 10
        add(
            at,
            "OOMKilled",
            n,
            f"container checkout terminated with OOMKilled (exit code 137), restart count {n}",
        )
        add(
            at + 1,
            "CrashLoopBackOff",
            n,
            f"back-off {10 * n}s restarting failed container=checkout pod={pod}_shop{uid}",
        )
        add(at + 2, "BackOff", 2 * n, f"Back-off restarting failed container checkout in pod {pod}_shop{uid}")
        add(
            at + 3,
            "CrashLoopBackOff",
            n,
            f"pod {pod} is Ready again: CrashLoopBackOff cleared",
            resolved=True,
        )
        add(at + 3, "OOMKilled", n, f"pod {pod} is Ready again: OOMKilled cleared", resolved=True)
    add(55, "BackOff", 9, f"Back-off restarting failed container checkout in pod {pod}_shop{uid}")
    rows, _ = timeline(signals, limit=500)
    assert [(r.reason, r.times) for r in rows] == [("OOMKilled", 4), ("Ready", 4), ("CrashLoopBackOff", 9)]
    ready = rows[1]
    assert ready.message == f"pod {pod} was Ready 4 times between restarts, and failed again after"
    assert ready.severity == "warning" and rows[2].severity == "critical"
    assert uid not in rows[2].message


def test_a_real_recovery_stays_one_and_a_loop_in_the_same_second_is_not_one() -> None:
    """A "Ready again" Signal carries its failure's first_seen; what counts is when it was Ready."""
    from types import SimpleNamespace

    from aetherius.web.views import timeline

    def signal(name: str, first: int, last: int, message: str, *, resolved: bool) -> SimpleNamespace:
        return SimpleNamespace(
            id=first * 100 + last, reason="CrashLoopBackOff", kind="Pod", name=name, count=1, resolved=resolved,
            severity="info" if resolved else "critical", message=message,
            first_seen=f"2026-12-05T10:00:{first:02d}Z", last_seen=f"2026-12-05T10:00:{last:02d}Z",
        )  # fmt: skip

    recovered = [
        signal("api-3", 0, 5, "container api: back-off restarting failed container", resolved=False),
        signal("api-3", 0, 6, "pod api-3 is Ready again: CrashLoopBackOff cleared", resolved=True),
    ]
    looping = [
        signal("api-4", 0, 5, "pod api-4 is Ready again: CrashLoopBackOff cleared", resolved=True),
        signal("api-4", 0, 5, "container api: back-off restarting failed container", resolved=False),
        signal("api-4", 0, 9, "pod api-4 is Ready again: CrashLoopBackOff cleared", resolved=True),
        signal("api-4", 0, 9, "container api: back-off restarting failed container", resolved=False),
    ]
    recovered[1].count = 2  # the count of the failure it cleared, not of its own
    rows, _ = timeline(recovered + looping, limit=500)
    messages = {r.name: r.message for r in rows if r.reason == "Ready"}
    [back] = [r for r in rows if r.name == "api-3" and r.reason == "Ready"]
    assert (back.first, back.times) == ("2026-12-05T10:00:06Z", 1)
    assert messages["api-3"] == "pod api-3 is Ready again: CrashLoopBackOff cleared"
    assert messages["api-4"] == "pod api-4 was Ready 2 times between restarts, and failed again after"
