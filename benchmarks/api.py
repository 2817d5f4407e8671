"""API under load: the incident list and an incident page, 10,000 incidents in PostgreSQL.

A fresh PostgreSQL database is seeded (bulk insert into the store's schema), the app is served
by uvicorn on loopback in a subprocess, and an async httpx client sends requests open-loop at a
target rate (latency counted from the scheduled send time, so a slow server cannot hide queueing).

    python -m benchmarks.api [--incidents 10000] [--rate 500] [--seconds 10] [--json]

Target: p99 ≤ 50 ms at 500 req/s for the list. ``--json`` prints ``{"rps", "p99_ms", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
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


async def serve(url: str, port: int) -> None:
    """The server side (run in the subprocess): the app over the seeded store."""
    import uvicorn

    from aetherius.api.app import create_app
    from aetherius.config import load_settings
    from aetherius.store import Store

    class NoBus:
        async def publish(self, signals: Any) -> None:
            raise RuntimeError("the benchmark publishes nothing")

        async def pull(self, *, durable: str, batch: int, timeout: float) -> list[Any]:
            return []

        async def close(self) -> None:
            return None

    store = await Store.open(url)
    settings = load_settings(
        env={}, overrides={("api", "rate_limit_per_second"): 1e6, ("api", "rate_limit_burst"): 1_000_000}
    )
    app = create_app(settings=settings, store=store, bus=NoBus(), with_dashboard=True)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    await uvicorn.Server(config).serve()


async def drive(base: str, path: str, *, token: str, rate: float, seconds: float) -> dict[str, float]:
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
            [sys.executable, "-m", "benchmarks.api", "--serve", url, "--port", str(port)],
            env=os.environ.copy(),
        )
        wait_for_port("127.0.0.1", port, timeout=30)
        base = f"http://127.0.0.1:{port}"
        listing = await drive(
            base, "/api/v1/incidents?limit=50", token=token, rate=args.rate, seconds=args.seconds
        )
        page = await drive(
            base, f"/api/v1/incidents/{incident}", token=token, rate=args.rate / 5, seconds=args.seconds
        )
        filtered = await drive(
            base,
            "/api/v1/incidents?severity=critical&state=open&limit=50",
            token=token,
            rate=args.rate / 5,
            seconds=args.seconds,
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "rps": listing["rps"],
        "p99_ms": listing["p99_ms"],
        "incidents": args.incidents,
        "target_rate": args.rate,
        "list": listing,
        "incident": page,
        "filtered_list": filtered,
        "target_met": listing["p99_ms"] <= 50
        and listing["rps"] >= 0.95 * args.rate
        and listing["errors"] == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.port))
        return
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
