"""End to end: one database down, two applications failing on it → one problem, one notice.

The chain-database scenario served live by the simulated cluster; ``aetherius run`` (watcher,
orchestrator, API, notification dispatcher in one process, as a person starts it) with a signed
webhook to a receiver on loopback. postgres-0 is OOM-killed; orders (by name) and invoices (by
ClusterIP) crash-loop on connection refused. Whatever order the Signals and diagnoses land in, the
store ends with three incidents, the two clients linked to postgres' incident, and the receiver
with exactly one notice: the root's, listing both.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from aetherius.sim import SimCluster
from tests.orchestrator.test_run_demo import DASHBOARD, TOKEN, Cli
from tests.orchestrator.test_run_demo import env as env
from tests.receivers import SECRET, Receiver
from tests.scenarios.library import ROOT


def _app_yaml(directory: Path, receiver: Receiver) -> Path:
    document: dict[str, Any] = {
        "log_format": "json",
        "metrics": {"enabled": False},
        "health": {"port": 0},
        "orchestrator": {"recheck_interval": "1h", "resolve_after": "1h"},
        "notifications": {
            "wait_for_report": 20,
            "base_backoff": 0.1,
            "sinks": [{"name": "hook", "type": "webhook", "url": f"{receiver.url}/hook", "secret": SECRET}],
        },
    }
    path = directory / "app.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _detail(url: str, token: str, incident_id: int) -> dict[str, Any]:
    response = httpx.get(
        f"{url}/api/v1/incidents/{incident_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _incidents(url: str, token: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/incidents?limit=50", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_database_down_is_one_incident_with_two_linked_and_one_notice(
    tmp_path: Path, receiver: Receiver, env: dict[str, str]
) -> None:
    async with SimCluster(scenario=ROOT / "chain-database" / "snapshot.yaml") as sim:
        kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
        config = _app_yaml(tmp_path, receiver)
        cli = Cli.start(
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--port",
            "0",
            "--config",
            str(config),
            env={**env, "CLUSTER_ID": "chain"},
        )
        try:
            url = await asyncio.to_thread(cli.wait_for, DASHBOARD)
            token = await asyncio.to_thread(cli.wait_for, TOKEN)
            deadline = time.monotonic() + 90
            by_owner: dict[str, dict[str, Any]] = {}
            while time.monotonic() < deadline:
                by_owner = {i["owner_name"]: i for i in await asyncio.to_thread(_incidents, url, token)}
                root = by_owner.get("postgres")
                if (
                    root is not None
                    and {"orders", "invoices"} <= by_owner.keys()
                    and all(by_owner[o]["upstream_id"] == root["id"] for o in ("orders", "invoices"))
                    and receiver.accepted
                ):
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError(
                    f"incidents: {by_owner}\nnotices: {receiver.accepted}\n{cli.output()[-4000:]}"
                )
            assert set(by_owner) == {"postgres", "orders", "invoices"}, by_owner
            root = by_owner["postgres"]
            assert root["upstream_id"] is None and root["root_cause"] == "OutOfMemory"
            # The clients' reports lead with the root: its words, its runbook.
            for owner in ("orders", "invoices"):
                detail = await asyncio.to_thread(_detail, url, token, by_owner[owner]["id"])
                assert detail["upstream"]["id"] == root["id"]
                document = detail["reports"][0]["document"]
                assert document["title"].startswith("Out of memory: StatefulSet db/postgres"), document[
                    "title"
                ]
                assert document["runbook"]["slug"] == "oom-killed"
            detail = await asyncio.to_thread(_detail, url, token, root["id"])
            assert {d["owner_name"] for d in detail["downstream"]} == {"orders", "invoices"}
            # NB: proving that no other notice comes needs a bounded wait: the dispatcher polls, and a
            # notice claimed just before its incident was linked would still arrive within it.
            await asyncio.sleep(3)
            assert len(receiver.accepted) == 1, [
                r["json"]["incident"]["owner_name"] for r in receiver.accepted
            ]
            notice = receiver.accepted[0]["json"]
            assert notice["incident"]["id"] == root["id"]
            assert {a["id"] for a in notice["affects"]} == {
                by_owner["orders"]["id"],
                by_owner["invoices"]["id"],
            }
        finally:
            code = await asyncio.to_thread(cli.stop)
        assert code == 0, cli.output()[-3000:]
