"""CPU throttling from cAdvisor's CFS counters: an episode said once, its end said once."""

from __future__ import annotations

from aetherius.agent.throttling import ThrottleTracker, parse_cfs

TEXT = """# HELP container_cpu_cfs_periods_total Number of elapsed enforcement period intervals.
# TYPE container_cpu_cfs_periods_total counter
container_cpu_cfs_periods_total{container="api",id="/kubepods/x",image="i",name="n",namespace="shop",pod="api-1"} {periods} 1700000000000
container_cpu_cfs_throttled_periods_total{container="api",id="/kubepods/x",image="i",name="n",namespace="shop",pod="api-1"} {throttled} 1700000000000
container_cpu_cfs_periods_total{container="",id="/kubepods/pod",image="",name="",namespace="shop",pod="api-1"} 999 1700000000000
container_cpu_usage_seconds_total{container="api",namespace="shop",pod="api-1"} 12.5 1700000000000
"""


def _sample(periods: int, throttled: int) -> str:
    return TEXT.replace("{periods}", str(periods)).replace("{throttled}", str(throttled))


def test_cfs_counters_are_read_per_container_and_nothing_else() -> None:
    assert parse_cfs(_sample(100, 40)) == {("shop", "api-1", "api"): (40.0, 100.0)}
    assert parse_cfs('garbage\ncontainer_cpu_cfs_periods_total{namespace="a"} x') == {}


def test_an_episode_is_said_once_after_three_polls_and_its_end_once() -> None:
    tracker = ThrottleTracker(ratio=0.5, polls=3)
    periods, throttled, said = 0, 0, []
    for share in (0.1, 0.8, 0.9, 0.7, 0.8, 0.9, 0.6, 0.3, 0.1, 0.05):
        periods += 100
        throttled += int(100 * share)
        said += [
            (e.started, round(e.ratio, 2)) for e in tracker.observe(parse_cfs(_sample(periods, throttled)))
        ]
    # 0.8, 0.9, 0.7: three polls in a row at or above half → once; 0.6 and 0.3 keep it (0.3 is
    # not under half of the ratio); 0.1 ends it.
    assert said == [(True, 0.7), (False, 0.1)]


def test_a_restarted_container_s_counters_start_over_without_a_false_episode() -> None:
    tracker = ThrottleTracker(ratio=0.5, polls=1)
    assert tracker.observe(parse_cfs(_sample(1000, 100))) == []
    assert tracker.observe(parse_cfs(_sample(10, 9))) == []  # counters reset: a new baseline
    (event,) = tracker.observe(parse_cfs(_sample(110, 89)))
    assert event.started and "throttled in 80% of its CPU periods" in event.message()
