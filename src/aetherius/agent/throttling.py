"""CPU throttling from the kubelet's cAdvisor metrics: a container that spends its CPU periods
waiting at its limit is slow for a reason no status or event shows.

``container_cpu_cfs_throttled_periods_total`` over ``container_cpu_cfs_periods_total``, per
container, between two polls: the share of scheduling periods in which the container hit its CPU
limit. At or above ``throttled_ratio`` for ``throttled_polls`` polls in a row it is an episode,
said once; it ends when the share falls back under half the ratio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ThrottleEvent", "ThrottleTracker", "parse_cfs"]

Key = tuple[str, str, str]  # namespace, pod, container
_LINE = re.compile(
    r"^container_cpu_cfs_(?P<what>throttled_periods|periods)_total\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.eE+]+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_cfs(text: str) -> dict[Key, tuple[float, float]]:
    """(throttled periods, periods) per container, from Prometheus text; other series ignored."""
    out: dict[Key, list[float]] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match.group("labels")))
        key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
        if not all(key):
            continue  # the pod's own cgroup, not a container's
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        pair = out.setdefault(key, [0.0, 0.0])
        pair[0 if match.group("what") == "throttled_periods" else 1] = value
    return {key: (pair[0], pair[1]) for key, pair in out.items()}


@dataclass(frozen=True)
class ThrottleEvent:
    key: Key
    ratio: float  # throttled share of the periods since the last poll
    started: bool  # True: an episode starts; False: it ended

    def message(self) -> str:
        namespace, pod, container = self.key
        if self.started:
            return (
                f"container {container} of pod {namespace}/{pod} is throttled in {self.ratio:.0%} of its CPU "
                "periods: it waits at its CPU limit (raise resources.limits.cpu, or remove the limit)"
            )
        return f"container {container} of pod {namespace}/{pod} is no longer throttled ({self.ratio:.0%})"


@dataclass
class ThrottleTracker:
    ratio: float = 0.5
    polls: int = 3
    _last: dict[Key, tuple[float, float]] = field(default_factory=dict)
    _streak: dict[Key, int] = field(default_factory=dict)
    _throttled: set[Key] = field(default_factory=set)

    def observe(self, counters: dict[Key, tuple[float, float]]) -> list[ThrottleEvent]:
        events: list[ThrottleEvent] = []
        for key, (throttled, periods) in counters.items():
            before = self._last.get(key)
            self._last[key] = (throttled, periods)
            if before is None or periods <= before[1]:
                continue  # the first sample, or a restarted container's counters
            share = max(0.0, throttled - before[0]) / (periods - before[1])
            if share >= self.ratio:
                self._streak[key] = self._streak.get(key, 0) + 1
                if self._streak[key] >= self.polls and key not in self._throttled:
                    self._throttled.add(key)
                    events.append(ThrottleEvent(key=key, ratio=share, started=True))
            else:
                self._streak[key] = 0
                if key in self._throttled and share < self.ratio / 2:
                    self._throttled.discard(key)
                    events.append(ThrottleEvent(key=key, ratio=share, started=False))
        for gone in set(self._last) - set(counters):  # the container went away
            self._last.pop(gone, None)
            self._streak.pop(gone, None)
            self._throttled.discard(gone)
        return events
