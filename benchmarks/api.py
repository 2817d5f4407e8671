"""API under load: the incident list and an incident page, 10,000 incidents in PostgreSQL.

A fresh PostgreSQL database is seeded (bulk insert into the store's schema), the app is served
by uvicorn on loopback in a subprocess, and requests are sent at a target rate by ``wrk`` (C, one
thread, paced by ``benchmarks/paced.lua``) when it is installed, else by an async httpx client
(open-loop, latency counted from the scheduled send time). NB: on a 2-core machine the Python
client spends about as much CPU sending 500 req/s as the server answering them, so its figures
measure the client as much as the server; the report names the generator used.

    python -m benchmarks.api [--incidents 10000] [--rate 500] [--seconds 10] [--json]
        [--client auto|wrk|httpx] [--workers 1] [--http auto|h11|httptools] [--loop auto|asyncio|uvloop]

Target: p99 ≤ 50 ms at 500 req/s for the list. ``--json`` prints ``{"rps", "p99_ms", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from tests.services import POSTGRES_DSN, free_port, wait_for_port


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{POSTGRES_DSN}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def seed(url: str, *, incidents: int) -> tuple[str, int]:
    """Create the schema, ``incidents`` rows and a viewer token; return (token, an incident id)."""
    from sqlalchemy import insert

    from aetherius.store import Store
    from aetherius.store.models import IncidentRow

    store = await Store.open(url, migrate_schema=True)
    try:
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for n in range(incidents):
            seen = now - timedelta(minutes=n)
            rows.append(
                {
                    "cluster_id": f"cluster-{n % 5}",
                    "namespace": f"ns-{n % 40}",
                    "fingerprint": f"fp-{n}",
                    "object_kind": "Pod",
                    "object_name": f"app-{n}-7d9f8",
                    "owner_kind": "Deployment",
                    "owner_name": f"app-{n}",
                    "reason": ("CrashLoopBackOff", "ImagePullBackOff", "FailedScheduling")[n % 3],
                    "root_cause": ("OutOfMemory", "ImageNotFound", "InsufficientResources")[n % 3],
                    "summary": f"Container app-{n} is failing",
                    "severity": ("critical", "warning", "info")[n % 3],
                    "state": "open" if n % 4 else "resolved",
                    "signal_count": 3,
                    "event_count": 3,
                    "first_seen": seen - timedelta(minutes=5),
                    "last_seen": seen,
                    "affected_objects": [
                        {"kind": "Pod", "namespace": f"ns-{n % 40}", "name": f"app-{n}-7d9f8"}
                    ],
                    "created_at": seen,
                    "updated_at": seen,
                }
            )
        async with store.engine.begin() as conn:
            for start in range(0, len(rows), 1000):
                await conn.execute(insert(IncidentRow), rows[start : start + 1000])
        token = (await store.create_token(name="bench", role="viewer")).secret
        first = (await store.list_incidents(limit=1)).items[0].id
        return token, first
    finally:
        await store.close()


PACED_LUA = Path(__file__).with_name("paced.lua")


class NoBus:
    async def publish(self, signals: Any) -> None:
        raise RuntimeError("the benchmark publishes nothing")

    async def pull(self, *, durable: str, batch: int, timeout: float) -> list[Any]:
        return []

    async def close(self) -> None:
        return None


def app_factory() -> Any:
    """The app over the seeded store (uvicorn calls this in each worker; URL in the environment)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    from aetherius.api.app import settle_heap
    from aetherius.compose.app import create_app
    from aetherius.config import load_settings
    from aetherius.store import Store

    url = os.environ["AETHERIUS_BENCH_URL"]
    settings = load_settings(
        env={}, overrides={("api", "rate_limit_per_second"): 1e6, ("api", "rate_limit_burst"): 1_000_000}
    )
    holder: dict[str, FastAPI] = {}

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        store = await Store.open(url)
        holder["app"] = create_app(settings=settings, store=store, bus=NoBus(), with_dashboard=True)
        settle_heap()  # as `aetherius api` does before serving
        try:
            yield
        finally:
            await store.close()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await FastAPI(lifespan=lifespan)(scope, receive, send)
            return
        await holder["app"](scope, receive, send)

    return app


def serve_command(url: str, port: int, args: argparse.Namespace) -> list[str]:
    del url
    command = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.api:app_factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    command += ["--workers", str(args.workers), "--http", args.http, "--loop", args.loop]
    return command


def drive_wrk(base: str, path: str, *, token: str, rate: float, seconds: float) -> dict[str, Any]:
    """Paced load by wrk (one thread, enough connections that one is always free at the target)."""
    connections = max(4, min(100, int(rate // 10)))
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    command += ["-s", str(PACED_LUA), base + path, "--", token, str(rate)]
    # NB: one unmeasured second at the same rate and connections first, so the figures are the
    # steady state (server connection pools opened, statements prepared), not the ramp-up.
    warm = [
        "wrk",
        "-t1",
        f"-c{connections}",
        "-d1s",
        "-s",
        str(PACED_LUA),
        base + path,
        "--",
        token,
        str(rate),
    ]
    warmed = subprocess.run(warm, capture_output=True, text=True, check=True, timeout=30)
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "sent": summary["requests"] + json.loads(warmed.stdout.strip().splitlines()[-1])["requests"],
        "rps": round(summary["requests"] / (summary["duration_us"] / 1e6), 1),
        "p50_ms": round(summary["p50_us"] / 1000, 2),
        "p99_ms": round(summary["p99_us"] / 1000, 2),
        "errors": summary["socket_errors"] + summary["status_errors"],
    }


async def drive(
    base: str, path: str, *, token: str, rate: float, seconds: float, client: str = "httpx"
) -> dict[str, Any]:
    """Load at ``rate`` req/s for ``seconds`` with ``client`` (wrk or httpx)."""
    if client == "wrk":
        return await asyncio.to_thread(drive_wrk, base, path, token=token, rate=rate, seconds=seconds)
    return await drive_httpx(base, path, token=token, rate=rate, seconds=seconds)


async def drive_httpx(base: str, path: str, *, token: str, rate: float, seconds: float) -> dict[str, float]:
    """Open-loop load at ``rate`` req/s for ``seconds``; latencies from the scheduled send time."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=10
    ) as http:
        for _ in range(20):  # warm the pool and the caches
            await http.get(path)
        total = int(rate * seconds)
        start = time.perf_counter()

        async def one(at: float) -> None:
            nonlocal errors
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                response = await http.get(path)
            except httpx.HTTPError:
                errors += 1  # NB: an overloaded server: counted, and its latency still recorded
            else:
                errors += response.status_code != 200
            latencies.append(time.perf_counter() - at)

        await asyncio.gather(*(one(start + i / rate) for i in range(total)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "sent": len(latencies) + 20,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(p(0.5), 2),
        "p99_ms": round(p(0.99), 2),
        "errors": errors,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"aeth_bench_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    server: subprocess.Popen[bytes] | None = None
    try:
        token, incident = await seed(url, incidents=args.incidents)
        port = free_port()
        server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load is driven
            serve_command(url, port, args),
            env={**os.environ, "AETHERIUS_BENCH_URL": url},
            start_new_session=True,  # NB: its own process group, so workers are stopped with it
        )
        wait_for_port("127.0.0.1", port, timeout=30)
        base = f"http://127.0.0.1:{port}"
        client = generator(args.client)
        load = {"token": token, "seconds": args.seconds, "client": client}
        listing = await measured(server, base, "/api/v1/incidents?limit=50", rate=args.rate, **load)
        page = await measured(server, base, f"/api/v1/incidents/{incident}", rate=args.rate / 5, **load)
        filtered = await measured(
            server,
            base,
            "/api/v1/incidents?severity=critical&state=open&limit=50",
            rate=args.rate / 5,
            **load,
        )
    finally:
        if server is not None:
            stop(server)
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "rps": listing["rps"],
        "p99_ms": listing["p99_ms"],
        "incidents": args.incidents,
        "target_rate": args.rate,
        "generator": client,
        "server": {"workers": args.workers, "http": args.http, "loop": args.loop},
        "list": listing,
        "incident": page,
        "filtered_list": filtered,
        "target_met": listing["p99_ms"] <= 50
        and listing["rps"] >= 0.95 * args.rate
        and listing["errors"] == 0,
    }


def server_cpu_seconds(server: subprocess.Popen[bytes]) -> float:
    """CPU time (user + system) of the server and its workers so far."""
    root = psutil.Process(server.pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


async def measured(server: subprocess.Popen[bytes], base: str, path: str, **load: Any) -> dict[str, Any]:
    """``drive`` plus the server's CPU milliseconds per request (warm-up included on both sides):
    a figure the machine's other load barely moves, unlike latency."""
    before = server_cpu_seconds(server)
    result = await drive(base, path, **load)
    spent = server_cpu_seconds(server) - before
    sent = result.pop("sent")
    return {**result, "server_cpu_ms_per_request": round(1000 * spent / max(sent, 1), 2)}


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop uvicorn and its workers: SIGTERM to the group, SIGKILL if it has not gone in 15 s."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def generator(choice: str) -> str:
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "httpx"
    if choice == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk); use --client httpx")
    return choice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("list", "incident", "filtered_list"):
            r = result[key]
            print(
                f"{key:14} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}"
            )
        print(
            f"target (p99 ≤ 50 ms at {args.rate:g} req/s for the list): {'met' if result['target_met'] else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
