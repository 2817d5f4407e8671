"""Kernel records from the node's log files, matched against a table of patterns (data, not code).

Reads kern.log-style files (``Dec  5 10:00:00 node-1 kernel: [1234.567] text``, RFC 3339 syslog
stamps, bare ``dmesg`` lines) without privileges, from a read-only hostPath; ``/dev/kmsg``
(``6,1234,5678901,-;text``) when listed, which needs CAP_SYSLOG. Each record's id is the boot id
plus its kernel timestamp (or ``/dev/kmsg`` sequence) plus a digest of its text: an agent that
restarts and reads the same records again publishes the same ids, which the bus drops (its
duplicate window is an hour); records older than ``lookback`` at start are skipped.

An OOM kill is parsed beyond its match: the victim's cgroup (``task_memcg=`` of the one-line
format of 4.19+, ``Task in … killed`` of older kernels; cgroupfs or systemd paths) names its pod
uid and container id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "KernelPattern",
    "KernelRecord",
    "OomVictim",
    "PatternError",
    "RecordParser",
    "load_patterns",
    "oom_victim",
]

_SEVERITIES = ("info", "warning", "critical")


class PatternError(ValueError):
    """A pattern table that cannot be used; the message names the entry and the file."""


@dataclass(frozen=True)
class KernelPattern:
    name: str
    reason: str
    severity: str
    pattern: re.Pattern[str]
    what: str


def load_patterns(extra_file: str = "") -> list[KernelPattern]:
    """The shipped table, with a user's file added (an entry of the same name replaces one)."""
    shipped = resources.files("aetherius.agent").joinpath("patterns.yaml").read_text(encoding="utf-8")
    table = {p.name: p for p in _parse(shipped, where="patterns.yaml (shipped)")}
    if extra_file:
        try:
            text = Path(extra_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise PatternError(f"{extra_file}: cannot read it: {exc.strerror or exc}") from None
        table.update({p.name: p for p in _parse(text, where=extra_file)})
    return list(table.values())


def _parse(text: str, *, where: str) -> list[KernelPattern]:
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PatternError(f"{where}: not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(entries, list):
        raise PatternError(f"{where}: expected a list of patterns")
    out = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise PatternError(f"{where}: entry {index}: not a mapping")
        name = entry.get("name")
        label = f"{where}: entry {index} ({name or 'no name'})"
        missing = [k for k in ("name", "reason", "severity", "pattern") if not isinstance(entry.get(k), str)]
        if missing:
            raise PatternError(f"{label}: {', '.join(missing)} missing")
        if entry["severity"] not in _SEVERITIES:
            raise PatternError(f"{label}: severity must be one of {', '.join(_SEVERITIES)}")
        try:
            pattern = re.compile(entry["pattern"])
        except re.error as exc:
            raise PatternError(f"{label}: pattern: {exc}") from None
        out.append(
            KernelPattern(
                name=str(name),
                reason=entry["reason"],
                severity=entry["severity"],
                pattern=pattern,
                what=str(entry.get("what") or ""),
            )
        )
    return out


@dataclass(frozen=True)
class OomVictim:
    pod_uid: str
    container_id: str
    task: str
    pid: str


# cgroupfs: /kubepods/burstable/pod<uid>/<container id>; systemd:
# /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_CONTAINER_ID = re.compile(r"(?:^|[/-])([0-9a-f]{64})(?:\.scope)?$")
_NEW_OOM = re.compile(r"oom-kill:.*?task_memcg=(?P<memcg>[^,\s]+).*?,task=(?P<task>[^,]+),pid=(?P<pid>\d+)")
_OLD_TASK_IN = re.compile(r"Task in (?P<memcg>\S+) killed as a result of limit of")
_KILLED = re.compile(r"Kill(?:ed)? process (?P<pid>\d+) \((?P<task>[^)]*)\)")


def victim_from_cgroup(memcg: str, *, task: str = "", pid: str = "") -> OomVictim | None:
    uid = _POD_UID.search(memcg)
    if uid is None:
        return None
    container = _CONTAINER_ID.search(memcg.rstrip("/"))
    return OomVictim(
        pod_uid=uid.group(1).replace("_", "-"),
        container_id=container.group(1) if container else "",
        task=task,
        pid=pid,
    )


def oom_victim(text: str, *, previous_memcg: str = "") -> OomVictim | None:
    """The victim an OOM record names: its own cgroup (new format) or the one of the ``Task in``
    line just before it (old format)."""
    new = _NEW_OOM.search(text)
    if new is not None:
        return victim_from_cgroup(new.group("memcg"), task=new.group("task"), pid=new.group("pid"))
    killed = _KILLED.search(text)
    if killed is not None and previous_memcg:
        return victim_from_cgroup(previous_memcg, task=killed.group("task"), pid=killed.group("pid"))
    return None


@dataclass(frozen=True)
class KernelRecord:
    record_id: str  # boot id + kernel time/sequence + digest: the same record, the same id
    at: datetime | None  # wall time, when the line says it
    text: str
    pattern: KernelPattern
    victim: OomVictim | None = None


_KMSG = re.compile(r"^(?P<prio>\d+),(?P<seq>\d+),(?P<usec>\d+),[^;]*;(?P<text>.*)$")
_RFC3339 = re.compile(
    r"^(?P<stamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))\s+\S+\s+(?P<rest>.*)$"
)
_BSD = re.compile(r"^(?P<stamp>[A-Z][a-z]{2}\s+\d{1,2}\s\d{2}:\d{2}:\d{2})\s+\S+\s+(?P<rest>.*)$")
_TAG = re.compile(r"^(?:kernel|[\w.@-]+(?:\[\d+\])?):\s?")
_KTIME = re.compile(r"^\[\s*(?P<ktime>\d+\.\d+)\]\s?")


class RecordParser:
    """Lines in, matched records out; remembers the last ``Task in`` cgroup for old-format OOMs."""

    def __init__(self, patterns: list[KernelPattern], *, boot_id: str, max_line_bytes: int = 4096) -> None:
        self.patterns = patterns
        self.boot_id = boot_id
        self.max_line_bytes = max_line_bytes
        self._memcg = ""
        self._oom_pids: dict[str, str] = {}  # pid → record id of its one-line OOM record

    def parse(self, raw: str, *, now: datetime) -> KernelRecord | None:
        line = raw[: self.max_line_bytes].rstrip("\r\n")
        at, key, text = self._split(line, now=now)
        if not text:
            return None
        task_in = _OLD_TASK_IN.search(text)
        if task_in is not None:
            self._memcg = task_in.group("memcg")
        for pattern in self.patterns:
            if not pattern.pattern.search(text):
                continue
            digest = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=6).hexdigest()
            record_id = f"{self.boot_id}:{key}:{digest}"
            victim = None
            if pattern.name == "oom-kill":
                killed = _KILLED.search(text)
                if killed is not None and not _NEW_OOM.search(text) and killed.group("pid") in self._oom_pids:
                    return None  # the "Killed process" line of an OOM its one-line record reported
                victim = oom_victim(text, previous_memcg=self._memcg)
                if victim is not None and victim.pid:
                    self._oom_pids[victim.pid] = record_id
                    if len(self._oom_pids) > 1024:
                        self._oom_pids.pop(next(iter(self._oom_pids)))
            return KernelRecord(record_id=record_id, at=at, text=text, pattern=pattern, victim=victim)
        return None

    def _split(self, line: str, *, now: datetime) -> tuple[datetime | None, str, str]:
        """(wall time, the record's key within the boot, the kernel's text)."""
        kmsg = _KMSG.match(line)
        if kmsg is not None:
            return None, f"seq{kmsg.group('seq')}", kmsg.group("text")
        at: datetime | None = None
        rest = line
        rfc = _RFC3339.match(line)
        if rfc is not None:
            at = _parse_rfc3339(rfc.group("stamp"))
            rest = rfc.group("rest")
        else:
            bsd = _BSD.match(line)
            if bsd is not None:
                at = _parse_bsd(bsd.group("stamp"), now=now)
                rest = bsd.group("rest")
        rest = _TAG.sub("", rest, count=1)
        ktime = _KTIME.match(rest)
        if ktime is not None:
            return at, f"k{ktime.group('ktime')}", rest[ktime.end() :]
        stamp = at.isoformat() if at is not None else "?"
        return at, f"t{stamp}", rest


def _parse_rfc3339(stamp: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_bsd(stamp: str, *, now: datetime) -> datetime | None:
    """``Dec  5 10:00:00`` (no year, local time of the node, taken as UTC): this year, or last
    year when that would put it in the future (a log read just after New Year)."""
    try:
        parsed = datetime.strptime(f"{now.year} {' '.join(stamp.split())}", "%Y %b %d %H:%M:%S")
    except ValueError:
        return None
    parsed = parsed.replace(tzinfo=UTC)
    if parsed - now > timedelta(days=1):
        parsed = parsed.replace(year=now.year - 1)
    return parsed


def describe(record: KernelRecord) -> dict[str, Any]:
    """What a record's Signal carries in its labels."""
    labels = {"pattern": record.pattern.name, "record": record.record_id}
    if record.victim is not None:
        labels.update(task=record.victim.task, pid=record.victim.pid, pod_uid=record.victim.pod_uid)
        if record.victim.container_id:
            labels["container_id"] = record.victim.container_id[:64]
    return labels
