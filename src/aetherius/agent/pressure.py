"""Pressure before eviction: each eviction signal of the kubelet, its level, and where it is heading.

For every signal the kubelet evicts on (``memory.available``, ``nodefs.available``,
``nodefs.inodesFree``, ``imagefs.available``, ``pid.available``) the tracker keeps the samples of
the last ``trend_window``, fits a line through them (least squares) and says:

- ``critical`` when what is left is at or under the eviction threshold (the kubelet evicts now);
- ``warning`` when it is under ``warn_ratio`` times the threshold, or falling fast enough to reach
  it within ``warn_horizon``;
- ``ok`` otherwise.

A change of level is an event (with the figures, the trend and the top consumers); a level that
holds says nothing more, so a node under steady pressure does not repeat itself every 10 s.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from aetherius.agent.kubelet import FsStats, Summary
from aetherius.config import NodeAgentSettings

__all__ = ["LEVELS", "PressureEvent", "PressureTracker", "format_amount", "threshold_bytes"]

LEVELS = ("ok", "warning", "critical")
_QUANTITY = re.compile(r"^\s*([0-9.]+)\s*(%|Ki|Mi|Gi|Ti|k|M|G|T)?\s*$")
_UNITS = {
    None: 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def threshold_bytes(value: str, capacity: float | None) -> float | None:
    """A kubelet eviction threshold ("100Mi", "10%") in the signal's unit; None when unusable."""
    match = _QUANTITY.match(value)
    if match is None:
        return None
    amount, unit = float(match.group(1)), match.group(2)
    if unit == "%":
        return None if not capacity else capacity * amount / 100
    return amount * _UNITS[unit]


def format_amount(value: float, *, unit: str) -> str:
    """Bytes as Ki/Mi/Gi (one decimal under 10), counts as they are."""
    if unit != "bytes":
        return f"{value:,.0f}"
    for suffix, size in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if abs(value) >= size:
            scaled = value / size
            return f"{scaled:.1f}{suffix}" if abs(scaled) < 10 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}B"


@dataclass(frozen=True)
class Reading:
    signal: str  # memory.available, nodefs.available, …
    available: float
    capacity: float | None
    threshold: float
    unit: str  # "bytes" | "inodes" | "pids"


@dataclass(frozen=True)
class PressureEvent:
    """A signal changed level: what a person needs to act before the kubelet does."""

    signal: str
    level: str
    previous: str
    available: float
    threshold: float
    unit: str
    slope_per_min: float | None  # negative: falling
    minutes_left: float | None
    top: list[tuple[str, float]]  # ("namespace/pod", amount)

    def message(self) -> str:
        text = f"{self.signal} {format_amount(self.available, unit=self.unit)}"
        if self.slope_per_min is not None and self.slope_per_min < 0:
            text += f", falling {format_amount(-self.slope_per_min, unit=self.unit)}/min"
        threshold = format_amount(self.threshold, unit=self.unit)
        if self.level == "critical":
            text += f": at or under the eviction threshold {threshold}, the kubelet evicts pods now"
        elif self.minutes_left is not None:
            text += f": eviction threshold {threshold} in ~{max(1, round(self.minutes_left))} min"
        elif self.level == "warning":
            text += f": close to the eviction threshold {threshold}"
        else:
            text += f": back above the eviction threshold {threshold} with room to spare"
        if self.top and self.level != "ok":
            text += "; top: " + ", ".join(f"{pod} {format_amount(v, unit=self.unit)}" for pod, v in self.top)
        return text


@dataclass
class _Track:
    samples: deque[tuple[float, float]] = field(default_factory=deque)  # (seconds, available)
    level: str = "ok"


class PressureTracker:
    """Readings in, level changes out; one tracker per node."""

    def __init__(self, settings: NodeAgentSettings) -> None:
        self.settings = settings
        self._tracks: dict[str, _Track] = {}

    def readings(self, summary: Summary) -> list[Reading]:
        node, s = summary.node, self.settings
        out: list[Reading] = []
        memory = node.memory
        if memory is not None and memory.availableBytes is not None:
            limit = threshold_bytes(s.eviction_memory_available, None)
            if limit is not None:
                out.append(Reading("memory.available", float(memory.availableBytes), None, limit, "bytes"))
        out += _fs_readings("nodefs", node.fs, s.eviction_nodefs_available, s.eviction_nodefs_inodes_free)
        image_fs = node.runtime.imageFs if node.runtime is not None else None
        out += _fs_readings("imagefs", image_fs, s.eviction_imagefs_available, None)
        rlimit = node.rlimit
        if rlimit is not None and rlimit.maxpid and rlimit.curproc is not None:
            limit = threshold_bytes(s.eviction_pid_available, float(rlimit.maxpid))
            if limit is not None:
                left = float(rlimit.maxpid - rlimit.curproc)
                out.append(Reading("pid.available", left, float(rlimit.maxpid), limit, "pids"))
        return out

    def observe(self, summary: Summary, *, at: float) -> list[PressureEvent]:
        """Take one poll's summary (``at``: monotonic seconds); the signals that changed level."""
        events = []
        window = self.settings.trend_window.total_seconds()
        for reading in self.readings(summary):
            track = self._tracks.setdefault(reading.signal, _Track())
            track.samples.append((at, reading.available))
            while track.samples and at - track.samples[0][0] > window:
                track.samples.popleft()
            slope = _slope_per_min(track.samples)
            minutes_left = None
            if slope is not None and slope < 0 and reading.available > reading.threshold:
                minutes_left = (reading.available - reading.threshold) / -slope
            level = self._level(reading, minutes_left)
            if level != track.level:
                events.append(
                    PressureEvent(
                        signal=reading.signal,
                        level=level,
                        previous=track.level,
                        available=reading.available,
                        threshold=reading.threshold,
                        unit=reading.unit,
                        slope_per_min=slope,
                        minutes_left=minutes_left,
                        top=_top(summary, reading.signal, self.settings.top_pods),
                    )
                )
                track.level = level
        return events

    def _level(self, reading: Reading, minutes_left: float | None) -> str:
        if reading.available <= reading.threshold:
            return "critical"
        horizon = self.settings.warn_horizon.total_seconds() / 60
        if reading.available < reading.threshold * self.settings.warn_ratio:
            return "warning"
        if minutes_left is not None and minutes_left <= horizon:
            return "warning"
        return "ok"


def _fs_readings(name: str, fs: FsStats | None, available: str, inodes_free: str | None) -> list[Reading]:
    out: list[Reading] = []
    if fs is None:
        return out
    if fs.availableBytes is not None and fs.capacityBytes:
        limit = threshold_bytes(available, float(fs.capacityBytes))
        if limit is not None:
            out.append(
                Reading(
                    f"{name}.available", float(fs.availableBytes), float(fs.capacityBytes), limit, "bytes"
                )
            )
    if inodes_free is not None and fs.inodesFree is not None and fs.inodes:
        limit = threshold_bytes(inodes_free, float(fs.inodes))
        if limit is not None:
            out.append(Reading(f"{name}.inodesFree", float(fs.inodesFree), float(fs.inodes), limit, "inodes"))
    return out


def _slope_per_min(samples: Iterable[tuple[float, float]]) -> float | None:
    """Least-squares slope of the samples, per minute; None with fewer than three."""
    points = list(samples)
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def _top(summary: Summary, signal: str, count: int) -> list[tuple[str, float]]:
    """The pods using the most of what the signal measures."""
    used: list[tuple[str, float]] = []
    for pod in summary.pods:
        ref = f"{pod.podRef.namespace}/{pod.podRef.name}"
        if signal == "memory.available" and pod.memory is not None and pod.memory.workingSetBytes:
            used.append((ref, float(pod.memory.workingSetBytes)))
        elif (
            signal == "nodefs.available"
            and pod.ephemeral_storage is not None
            and pod.ephemeral_storage.usedBytes
        ):
            used.append((ref, float(pod.ephemeral_storage.usedBytes)))
        elif signal == "pid.available" and pod.process_stats is not None and pod.process_stats.process_count:
            used.append((ref, float(pod.process_stats.process_count)))
    return sorted(used, key=lambda item: -item[1])[:count]
