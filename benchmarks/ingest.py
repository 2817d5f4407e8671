"""Ingest benchmark: the same pre-rendered watch stream of N Events, served by the sim, consumed by

1. decode — our watch loop (reflector + Signal derivation, no bus) vs. the official
   ``kubernetes`` client's ``watch.Watch().stream`` building its models (sync, as most tools do);
2. end to end — the Watcher publishing every Signal to JetStream with acks (pipelined, bounded
   in-flight window) vs. the ceiling: a bare nats-py loop publishing the same payloads with the
   same window and acks (and, for reference, vs. the Watcher's own transport, ``AckPipeline``,
   fed the same payloads bare);
3. the Watcher's peak RSS and CPU seconds per 10k events (measured in its own process).

The sim runs in its own process so that serving the stream does not share a core's GIL with the
consumer being measured. Usage::

    python benchmarks/ingest.py [--events 100000] [--nats nats://127.0.0.1:4222] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _settings(nats_url: str, suffix: str) -> Any:
    from aetherius.config import load_settings

    return load_settings(
        env={},
        overrides={
            ("message_bus", "url"): nats_url,
            ("message_bus", "stream"): f"BENCH_{suffix}",
            ("message_bus", "subject_prefix"): f"bench{suffix}.signals",
            ("message_bus", "kv_bucket"): f"bench_{suffix}",
            ("message_bus", "duplicate_window"): "2m",
            ("watcher", "event_types"): ["Normal", "Warning"],
            ("watcher", "min_severity"): "info",
        },
    )


# -- the sim, in its own process -------------------------------------------------------------


async def _serve_sim(n: int, kubeconfig: Path, info: Path) -> None:
    from aetherius.sim import SimCluster

    async with SimCluster(history_size=n + 100, bookmark_interval=60.0) as sim:
        result = sim.preload_events(n)
        sim.write_kubeconfig(kubeconfig)
        _write(info, json.dumps({"start_rv": result.start_rv, "count": result.count}))
        await asyncio.Event().wait()


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _start_sim(n: int, workdir: Path) -> tuple[subprocess.Popen[bytes], Path, int]:
    kubeconfig, info = workdir / "kubeconfig", workdir / "sim.json"
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-sim", str(n), str(kubeconfig), str(info)],
        env=_env(),
    )
    for _ in range(1200):
        if info.exists() and info.read_text():
            return process, kubeconfig, int(json.loads(info.read_text())["start_rv"])
        if process.poll() is not None:
            raise SystemExit("the sim failed to start")
        time.sleep(0.05)
    raise SystemExit("the sim did not preload in time")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    return env


# -- 1. decode -------------------------------------------------------------------------------


class _CountingSink:
    """Derive every Signal like the Watcher does, then just count (no bus)."""

    def __init__(self, deriver: Any, n: int) -> None:
        self.deriver, self.n = deriver, n
        self.events = self.signals = 0
        self.done = asyncio.Event()

    def relist_started(self, reflector: Any) -> None:
        raise RuntimeError("the benchmark stream must be watched, not listed")

    async def handle(self, reflector: Any, changes: Sequence[Any], rv: str | None) -> None:
        self.signals += len(self.deriver.from_events(changes))
        self.events += len(changes)
        if self.events >= self.n:
            reflector.stop()
            self.done.set()

    async def checkpoint(self, reflector: Any, rv: str) -> None:
        return None


async def _decode_ours(kubeconfig: Path, start_rv: int, n: int, nats_url: str) -> tuple[float, int, int]:
    from aetherius.kube import KubeClient
    from aetherius.watch.derive import Deriver
    from aetherius.watch.reflector import EVENTS, Reflector

    settings = _settings(nats_url, "decode")
    client = await KubeClient.from_kubeconfig(kubeconfig)
    sink = _CountingSink(Deriver(cluster_id="bench", settings=settings.watcher), n)
    reflector = Reflector(
        client=client, spec=EVENTS, sink=sink, settings=settings.watcher, resource_version=str(start_rv)
    )
    started = time.perf_counter()
    task = asyncio.create_task(reflector.run())
    await sink.done.wait()
    elapsed = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    return elapsed, sink.events, sink.signals


def _decode_official(kubeconfig: Path, start_rv: int, n: int) -> tuple[float, int]:
    from kubernetes import client, config, watch

    config.load_kube_config(config_file=str(kubeconfig))
    api = client.CoreV1Api()
    seen = 0
    started = time.perf_counter()
    stream = watch.Watch().stream(
        api.list_event_for_all_namespaces, resource_version=str(start_rv), timeout_seconds=600
    )
    for event in stream:
        assert event["object"].reason is not None
        seen += 1
        if seen >= n:
            break
    return time.perf_counter() - started, seen


# -- 2. end to end: the Watcher in its own process ---------------------------------------------


async def _run_watcher(kubeconfig: Path, start_rv: int, n: int, nats_url: str, suffix: str) -> dict[str, Any]:
    from aetherius.bus import open_bus
    from aetherius.kube import KubeClient
    from aetherius.watch.watcher import Watcher

    settings = _settings(nats_url, suffix)
    client = await KubeClient.from_kubeconfig(kubeconfig)
    bus = await open_bus(settings.message_bus)
    watcher = Watcher(client=client, bus=bus, settings=settings, cluster_id="bench", resources=("events",))
    watcher.reflectors[0].resource_version = str(start_rv)
    cpu_before = _cpu()
    started = time.perf_counter()
    await watcher.start()
    while watcher.stats.published < n:  # noqa: ASYNC110 (polling the acknowledged count)
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    cpu = _cpu() - cpu_before
    await watcher.stop()
    await client.close()
    await bus.close()
    return {
        "seconds": elapsed,
        "published": watcher.stats.published,
        "cpu_seconds": cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _ceiling(
    nats_url: str, payloads: list[tuple[str, bytes]], window: int, batch: int
) -> tuple[float, float]:
    """A bare nats-py loop with the Watcher's publish mechanism and none of its work: the same
    Signal bytes and message ids, ``nc.publish(..., reply=inbox)`` on one wildcard ack inbox
    subscription, the same window (resuming at half), batches of the same size, every ack
    counted before the next batch's cursor would move."""
    async with _bench_stream(nats_url, "ceil") as (nc, subject):
        return await _nats_py_loop(nc, subject, payloads, window, batch)


async def _nats_py_loop(
    nc: Any, subject: str, payloads: list[tuple[str, bytes]], window: int, batch: int
) -> tuple[float, float]:
    prefix = f"{nc.new_inbox()}."
    state = {"in_flight": 0, "acked": 0}
    room, done = asyncio.Event(), asyncio.Event()
    target = len(payloads)

    async def on_ack(msg: Any) -> None:
        if b'"error"' in msg.data:
            raise SystemExit(f"ceiling publish rejected: {msg.data!r}")
        state["in_flight"] -= 1
        state["acked"] += 1
        if state["in_flight"] <= window // 2:
            room.set()
        if state["acked"] >= target:
            done.set()

    await nc.subscribe(f"{prefix}*", cb=on_ack)
    cpu_before = _cpu()
    started = time.perf_counter()
    for start in range(0, target, batch):
        reply = f"{prefix}{start}"
        for msg_id, payload in payloads[start : start + batch]:
            while state["in_flight"] >= window:
                room.clear()
                await room.wait()
            state["in_flight"] += 1
            await nc.publish(subject, payload, reply=reply, headers={"Nats-Msg-Id": msg_id})
    await done.wait()
    return time.perf_counter() - started, _cpu() - cpu_before


@contextlib.asynccontextmanager
async def _bench_stream(nats_url: str, name: str) -> AsyncIterator[tuple[Any, str]]:
    """A fresh connection and a stream of its own; yields the connection and a subject in it."""
    import nats

    suffix = secrets.token_hex(3)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = f"BENCH_{name.upper()}_{suffix}"
    await js.add_stream(name=stream, subjects=[f"{name}{suffix}.>"], duplicate_window=120)
    try:
        yield nc, f"{name}{suffix}.bench.event"
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def _transport_ceiling(
    nats_url: str, payloads: list[tuple[str, bytes]], window: int, batch: int
) -> tuple[float, float]:
    """The Watcher's own transport, bare: ``AckPipeline`` (its frame writer and ack counter) fed
    the same Signal bytes in batches of the same size, as many batches in flight as the Watcher
    keeps, every ack awaited. Not the ceiling (that one is nats-py's public API): it
    shows what the Watcher's reading, decoding and deriving cost on top of its own transport."""
    from aetherius.bus.pipeline import AckPipeline
    from aetherius.watch.watcher import MAX_BATCHES_IN_FLIGHT

    async with _bench_stream(nats_url, "tceil") as (nc, subject):
        pipeline = AckPipeline(nc, window=window)
        await pipeline.start()
        assert pipeline.fast, "the transport ceiling must use the Watcher's fast path"
        messages = [(subject, payload, msg_id) for msg_id, payload in payloads]
        in_flight: list[asyncio.Task[int]] = []
        cpu_before = _cpu()
        started = time.perf_counter()
        for start in range(0, len(messages), batch):
            if len(in_flight) >= MAX_BATCHES_IN_FLIGHT:
                await in_flight.pop(0)
            in_flight.append(asyncio.create_task(pipeline.publish(messages[start : start + batch])))
        for task in in_flight:
            await task
        return time.perf_counter() - started, _cpu() - cpu_before


def _run_ceiling(kubeconfig: Path, start_rv: int, n: int, nats_url: str, mode: str) -> dict[str, Any]:
    """Derive the payloads (untimed), then time the bare loop, in a fresh process like the Watcher."""
    payloads = asyncio.run(_signal_payloads(kubeconfig, start_rv, n))
    settings = _settings(nats_url, "ceiling")
    loop = _ceiling if mode == "nats-py" else _transport_ceiling
    seconds, cpu = asyncio.run(
        loop(nats_url, payloads, settings.message_bus.publish_window, settings.watcher.publish_batch)
    )
    return {"seconds": seconds, "published": len(payloads), "cpu_seconds": cpu}


async def _signal_payloads(kubeconfig: Path, start_rv: int, n: int) -> list[tuple[str, bytes]]:
    """The exact bytes the Watcher publishes for this stream (derived once, outside any timing)."""
    import msgspec

    from aetherius.kube import KubeClient
    from aetherius.signals import encode_signal
    from aetherius.watch.derive import Deriver
    from aetherius.watch.model import EventWatchEvent

    settings = _settings("nats://127.0.0.1:1", "payloads")
    deriver = Deriver(cluster_id="bench", settings=settings.watcher)
    decoder = msgspec.json.Decoder(EventWatchEvent)
    out: list[tuple[str, bytes]] = []
    client = await KubeClient.from_kubeconfig(kubeconfig)
    params = {"watch": "true", "resourceVersion": str(start_rv), "timeoutSeconds": 600}
    async with client, client.stream_lines("/api/v1/events", params=params) as lines:
        async for line in lines:
            event = decoder.decode(line)
            signal = deriver.from_event(event.object, watch_type=event.type)
            if signal is not None:
                out.append((signal.msg_id, encode_signal(signal)))
            if len(out) >= n:
                break
    return out


def _cleanup_streams(nats_url: str, suffix: str) -> None:
    async def run() -> None:
        import nats

        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        for stream in (f"BENCH_{suffix}", f"BENCH_{suffix}_DEAD", f"KV_bench_{suffix}"):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await nc.close()

    asyncio.run(run())


def _child(n: int, nats_url: str, *args: str) -> dict[str, Any]:
    """Run one measured consumer in a fresh interpreter (while the sim serves from its own)."""
    child = subprocess.run(
        [sys.executable, __file__, "--events", str(n), "--nats", nats_url, *args],
        env=_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if child.returncode != 0:
        raise SystemExit(f"the {args[0]} run failed:\n{child.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serve-sim", nargs=3, metavar=("N", "KUBECONFIG", "INFO"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--ceiling", nargs=3, metavar=("KUBECONFIG", "START_RV", "MODE"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--watcher", nargs=3, metavar=("KUBECONFIG", "START_RV", "SUFFIX"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_sim:
        n, kubeconfig, info = args.serve_sim
        asyncio.run(_serve_sim(int(n), Path(kubeconfig), Path(info)))
        return
    if args.ceiling:
        kubeconfig, start_rv, mode = args.ceiling
        print(json.dumps(_run_ceiling(Path(kubeconfig), int(start_rv), args.events, args.nats, mode)))
        return
    if args.watcher:
        kubeconfig, start_rv, suffix = args.watcher
        result = asyncio.run(_run_watcher(Path(kubeconfig), int(start_rv), args.events, args.nats, suffix))
        print(json.dumps(result))
        return

    n = args.events
    workdir = Path(tempfile.mkdtemp(prefix="aetherius-bench-"))
    sim, kubeconfig, start_rv = _start_sim(n, workdir)
    suffix = secrets.token_hex(3)
    try:
        ours_s, ours_events, ours_signals = asyncio.run(_decode_ours(kubeconfig, start_rv, n, args.nats))
        base_s, base_events = _decode_official(kubeconfig, start_rv, n)
        e2e = _child(n, args.nats, "--watcher", str(kubeconfig), str(start_rv), suffix)
        ceiling = _child(n, args.nats, "--ceiling", str(kubeconfig), str(start_rv), "nats-py")
        transport = _child(n, args.nats, "--ceiling", str(kubeconfig), str(start_rv), "pipeline")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        _cleanup_streams(args.nats, suffix)

    result = {
        "events": n,
        "decode_events": ours_events,
        "decode_signals": ours_signals,
        "baseline_events": base_events,
        "e2e_published": e2e["published"],
        "ceiling_published": ceiling["published"],
        "decode_events_per_s": round(ours_events / ours_s),
        "baseline_events_per_s": round(base_events / base_s),
        "decode_ratio": round((ours_events / ours_s) / (base_events / base_s), 2),
        "e2e_events_per_s": round(e2e["published"] / e2e["seconds"]),
        "ceiling_events_per_s": round(ceiling["published"] / ceiling["seconds"]),
        "ceiling_ratio": round(
            (e2e["published"] / e2e["seconds"]) / (ceiling["published"] / ceiling["seconds"]), 2
        ),
        "peak_rss_mib": round(e2e["peak_rss_mib"], 1),
        "cpu_seconds_per_10k": round(e2e["cpu_seconds"] / n * 10_000, 3),
        "ceiling_cpu_seconds_per_10k": round(ceiling["cpu_seconds"] / n * 10_000, 3),
        "transport_published": transport["published"],
        "transport_events_per_s": round(transport["published"] / transport["seconds"]),
        "transport_ratio": round(
            (e2e["published"] / e2e["seconds"]) / (transport["published"] / transport["seconds"]), 2
        ),
        "transport_cpu_seconds_per_10k": round(transport["cpu_seconds"] / n * 10_000, 3),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"ingest benchmark, {n} events")
    print(
        f"  decode   ours {result['decode_events_per_s']:>9,} ev/s   official client {result['baseline_events_per_s']:>9,} ev/s   ratio {result['decode_ratio']}x"
    )
    print(
        f"  e2e      ours {result['e2e_events_per_s']:>9,} ev/s   bare nats-py    {result['ceiling_events_per_s']:>9,} ev/s   ratio {result['ceiling_ratio']}"
    )
    print(
        f"  e2e      ours {result['e2e_events_per_s']:>9,} ev/s   own transport   {result['transport_events_per_s']:>9,} ev/s   ratio {result['transport_ratio']}"
    )
    print(
        f"  watcher  peak RSS {result['peak_rss_mib']} MiB   CPU {result['cpu_seconds_per_10k']} s / 10k events"
    )


if __name__ == "__main__":
    main()
