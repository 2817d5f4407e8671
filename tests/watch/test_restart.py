"""``python -m aetherius watch`` killed with SIGKILL and restarted: resumes from the KV cursor.

The second process must not replay the whole history (it resumes from the saved cursor, so it
lists nothing) and what the first one published after its last checkpoint is dropped by
JetStream's Msg-Id dedup: the stream ends with every ledger change exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from aetherius.bus import open_bus
from tests.services import free_port
from tests.watch.harness import CLUSTER, Harness, assert_exactly_once, harness


def _spawn(h: Harness, tmp_path: Path, tag: str) -> tuple[subprocess.Popen[bytes], Path]:
    bus = h.settings.message_bus
    env = dict(os.environ)
    env.update(
        {
            "CLUSTER_ID": CLUSTER,
            "AETHERIUS_MESSAGE_BUS__STREAM": bus.stream,
            "AETHERIUS_MESSAGE_BUS__SUBJECT_PREFIX": bus.subject_prefix,
            "AETHERIUS_MESSAGE_BUS__KV_BUCKET": bus.kv_bucket,
            "AETHERIUS_WATCHER__CHECKPOINT_INTERVAL": "0.3s",
            "AETHERIUS_WATCHER__PAGE_SIZE": "7",
        }
    )
    ready = tmp_path / f"ready-{tag}"
    log = (tmp_path / f"watch-{tag}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aetherius",
            "watch",
            "--kubeconfig",
            str(h.kubeconfig),
            "--bus",
            bus.url,
            "--health-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--ready-file",
            str(ready),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, ready


def _read_ready(ready: Path) -> str:
    return ready.read_text().strip() if ready.exists() else ""


async def _wait_ready(process: subprocess.Popen[bytes], ready: Path) -> tuple[int, int]:
    for _ in range(200):
        assert process.poll() is None, "watcher exited early"
        text = _read_ready(ready)
        if text:
            health, metrics = text.split()
            return int(health), int(metrics)
        await asyncio.sleep(0.05)
    raise AssertionError("watcher never became ready")


async def _metric(port: int, name: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


async def _wait_published(port: int, n: float, *, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if await _metric(port, "aetherius_signals_published_total") >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {n} Signals published")


async def _wait_cursor_saved(h: Harness) -> None:
    bus = await open_bus(h.settings.message_bus)
    kv = await bus.key_value(h.settings.message_bus.kv_bucket)
    try:
        for _ in range(100):
            if await kv.get(f"{CLUSTER}.cursor.events._all"):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the first watcher never saved its cursor")
    finally:
        await bus.close()


async def test_sigkill_then_restart_resumes_from_the_cursor(tmp_path: Path, nats_url: str) -> None:
    async with harness(tmp_path, nats_url) as h:
        for i in range(30):
            h.create(f"before-{i}")
        first, ready = _spawn(h, tmp_path, "first")
        try:
            _, metrics_port = await _wait_ready(first, ready)
            await _wait_published(metrics_port, 30)
            await _wait_cursor_saved(h)
            for i in range(30):
                h.create(f"live-{i}")
                if i % 3 == 0:
                    h.bump(f"before-{i}")
            await _wait_published(metrics_port, 40)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        for i in range(10):  # while nobody watches
            h.create(f"gap-{i}")
            h.bump(f"live-{i}")
        second, ready = _spawn(h, tmp_path, "second")
        try:
            health_port, metrics_port = await _wait_ready(second, ready)
            expected = h.expected()
            await _wait_published(metrics_port, 20)
            for _ in range(100):
                got = await h.published()
                if expected <= set(got):
                    break
                await asyncio.sleep(0.2)
            # resumed from the cursor: the second process never listed
            assert await _metric(metrics_port, "aetherius_watch_relists_total") == 0
            async with httpx.AsyncClient() as client:
                ready_doc = (await client.get(f"http://127.0.0.1:{health_port}/health/ready")).json()
            assert ready_doc["checks"]["dependencies"]["healthy"] is True
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=20) == 0, "SIGTERM must flush, save the cursor and exit 0"
        assert_exactly_once(expected, await h.published())
