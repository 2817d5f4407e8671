"""Kernel records: the pattern table, OOM kills in both formats attributed to their pod and
container, a flood of lines read in bounded memory, and hostile lines that change nothing."""

from __future__ import annotations

import asyncio
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aetherius.agent.kernel import PatternError, RecordParser, load_patterns
from aetherius.agent.reader import LogFileReader

NOW = datetime(2026, 12, 5, 10, 5, tzinfo=UTC)
UID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
CID = "a" * 64
NEW_FORMAT = [
    "Dec  5 10:00:00 node-1 kernel: [1234.567890] java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=999",
    "Dec  5 10:00:00 node-1 kernel: [1234.567900] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-"
    f"{CID}.scope,mems_allowed=0,oom_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
    f"{UID.replace('-', '_')}.slice,task_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
    f"{UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope,task=java,pid=4321,uid=1000",
    "Dec  5 10:00:00 node-1 kernel: [1234.567910] Memory cgroup out of memory: Killed process 4321 (java) "
    "total-vm:4000000kB, anon-rss:1000000kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:2000kB oom_score_adj:999",
]
OLD_UID = "0c3e1a2b-1111-2222-3333-444455556666"
OLD_FORMAT = [
    f"[ 99.000001] Task in /kubepods/burstable/pod{OLD_UID}/{'b' * 64} killed as a result of limit of /kubepods/burstable/pod{OLD_UID}",
    "[ 99.000001] memory: usage 262144kB, limit 262144kB, failcnt 1234",
    "[ 99.000002] Memory cgroup out of memory: Kill process 777 (python) score 1000 or sacrifice child",
    "[ 99.000003] Killed process 777 (python) total-vm:500000kB, anon-rss:260000kB, file-rss:1000kB",
]


def _parse(lines: list[str], parser: RecordParser | None = None) -> list[object]:
    parser = parser or RecordParser(load_patterns(), boot_id="boot-1")
    return [r for line in lines if (r := parser.parse(line, now=NOW)) is not None]


def test_an_oom_kill_in_the_one_line_format_names_its_pod_and_container_once() -> None:
    (record,) = _parse(NEW_FORMAT)
    assert record.pattern.reason == "KernelOOMKill"  # type: ignore[attr-defined]
    victim = record.victim  # type: ignore[attr-defined]
    assert (victim.pod_uid, victim.container_id, victim.task, victim.pid) == (UID, CID, "java", "4321")
    assert record.at == datetime(2026, 12, 5, 10, 0, tzinfo=UTC)  # type: ignore[attr-defined]


def test_an_oom_kill_in_the_old_format_takes_the_cgroup_of_its_task_in_line() -> None:
    records = _parse(OLD_FORMAT)
    victims = [r.victim for r in records]  # type: ignore[attr-defined]
    assert [(v.pod_uid, v.container_id, v.task, v.pid) for v in victims] == [
        (OLD_UID, "b" * 64, "python", "777")
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[ 500.1] INFO: task jbd2/sda1-8:321 blocked for more than 120 seconds.", "KernelHungTask"),
        ("[ 500.2] EXT4-fs (sda1): Remounting filesystem read-only", "FilesystemReadOnly"),
        ("[ 500.3] blk_update_request: I/O error, dev sdb, sector 123456 op 0x1:(WRITE)", "KernelIOError"),
        ("[ 500.4] XFS (nvme0n1p1): Metadata corruption detected at xfs_buf_ioend", "FilesystemError"),
        ("[ 500.5] nf_conntrack: nf_conntrack: table full, dropping packet", "ConntrackTableFull"),
        (
            "2026-12-05T10:00:00Z node-1 systemd[1]: containerd.service: Main process exited, code=killed",
            "RuntimeRestarted",
        ),
        ("6,5512,1300000000,-;nf_conntrack: table full, dropping packet", "ConntrackTableFull"),
    ],
)
def test_node_events_the_api_server_never_sees(line: str, reason: str) -> None:
    (record,) = _parse([line])
    assert record.pattern.reason == reason  # type: ignore[attr-defined]


def test_a_record_read_again_has_the_same_id_and_another_boot_another() -> None:
    line = NEW_FORMAT[1]
    first = _parse([line])[0].record_id  # type: ignore[attr-defined]
    again = _parse([line])[0].record_id  # type: ignore[attr-defined]
    rebooted = _parse([line], RecordParser(load_patterns(), boot_id="boot-2"))[0].record_id  # type: ignore[attr-defined]
    assert first == again != rebooted


def test_patterns_are_data_a_user_extends_or_replaces(tmp_path: Path) -> None:
    extra = tmp_path / "patterns.yaml"
    extra.write_text(
        "- {name: gpu-xid, reason: GPUError, severity: critical, pattern: 'NVRM: Xid', what: the GPU failed}\n"
        "- {name: conntrack-full, reason: ConntrackFull, severity: warning, pattern: 'table full'}\n"
    )
    table = {p.name: p for p in load_patterns(str(extra))}
    assert table["gpu-xid"].reason == "GPUError" and table["conntrack-full"].reason == "ConntrackFull"
    assert "oom-kill" in table
    for text, needle in (
        ("- {name: x, reason: R, severity: loud, pattern: a}", "severity must be one of"),
        ("- {name: x, reason: R, severity: info, pattern: '('}", "entry 0 (x): pattern:"),
        ("- {name: x, severity: info}", "reason, pattern missing"),
        ("{not: a list}", "expected a list"),
    ):
        extra.write_text(text)
        with pytest.raises(PatternError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            load_patterns(str(extra))
    with pytest.raises(PatternError, match="cannot read"):
        load_patterns(str(tmp_path / "missing.yaml"))


async def test_a_flood_of_100k_lines_is_read_in_bounded_memory_and_counted(tmp_path: Path) -> None:
    """100,000 lines, one in a hundred an OOM record, with NULs, a 1 MiB line and invalid UTF-8:
    every line read once, the long one cut, the memory held bounded by the queue, not the file."""
    log = tmp_path / "kern.log"
    junk = "[ 1.0] eth0: link up\x00 \udcff"
    with log.open("w", encoding="utf-8", errors="surrogateescape") as handle:
        for i in range(100_000):
            if i == 500:
                handle.write("x" * (1024 * 1024) + "\n")
            elif i % 100 == 0:
                handle.write(f"[{i}.5] Memory cgroup out of memory: Killed process {i} (app) total-vm:1kB\n")
            else:
                handle.write(f"{junk} {i}\n")
    parser = RecordParser(load_patterns(), boot_id="b")
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=100)
    matched = 0

    async def consume() -> None:
        nonlocal matched
        while True:
            await queue.get()
            matched += 1
            queue.task_done()

    read_all = asyncio.Event()

    async def on_line(line: str) -> None:
        if reader.lines == 100_000:
            read_all.set()
        record = parser.parse(line, now=NOW)
        if record is not None:
            await queue.put(record)  # a full queue holds the reader: back-pressure, not memory

    stop = asyncio.Event()
    reader = LogFileReader(
        str(log), on_line=on_line, max_line_bytes=4096, poll_interval=0.05, start_window=1 << 30
    )
    consumer = asyncio.create_task(consume())
    tracemalloc.start()
    task = asyncio.create_task(reader.run(stop))
    await asyncio.wait_for(read_all.wait(), timeout=120)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stop.set()
    await task
    await queue.join()
    consumer.cancel()
    assert reader.lines == 100_000 and reader.error == ""
    assert matched == 999  # one in a hundred, but line 500 is the 1 MiB one
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a 100k-line file"
