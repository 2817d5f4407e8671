"""CronJob schedules are judged as Kubernetes' own parser (robfig/cron, standard) judges them."""

from __future__ import annotations

import pytest

from aetherius.diagnosis.analyzers.jobs import valid_schedule

ACCEPTED = [
    "0 0 * * *",
    "*/5 * * * MON-FRI",
    "0 0 ? * *",  # robfig reads ? as *
    "0 0 1 JAN,JUL *",
    "0 0 * * 7",  # Sunday, as 0
    "15 2-4/2 1,15 * *",
    "@daily",
    "@midnight",
    "@every 1h30m",
    "@every 5s",
    "@every .5h",
]
REFUSED = {
    "*/0 * * * *": "bad minute field",
    "5-1 * * * *": "bad minute field",
    "60 * * * *": "bad minute field",
    "0 25 * * *": "bad hour field",
    "* * * *": "expected 5 fields",
    "0 0 L * *": "not standard cron",
    "0 0 1W * *": "not standard cron",
    "0 0 * * 1#2": "not standard cron",
    "@every banana": "@every takes a duration",
    "@every 5": "@every takes a duration",
    "@weekdays": "unknown descriptor",
    "TZ=UTC 0 0 * * *": "spec.timeZone",
}


@pytest.mark.parametrize("schedule", ACCEPTED)
def test_schedules_kubernetes_accepts_are_not_reported(schedule: str) -> None:
    assert valid_schedule(schedule) is None


@pytest.mark.parametrize(("schedule", "says"), REFUSED.items())
def test_schedules_kubernetes_refuses_are_reported_with_the_reason(schedule: str, says: str) -> None:
    problem = valid_schedule(schedule)
    assert problem is not None and says in problem, problem
