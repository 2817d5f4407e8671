"""The split topology of ``deploy/``: ``aetherius watch`` and two ``aetherius orchestrator`` processes.

The cluster is quiet (the empty sim: no failure, so no Signal at all); the store's cluster row
must still show the watcher as watching, from its health reports over NATS, and show it as
unreachable once the watcher is gone. A junk value among the reports changes nothing.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from aetherius.bus import open_bus
from aetherius.config import MessageBusSettings
from aetherius.orchestrator.clusters import UNREACHABLE
from aetherius.sim import SimCluster
from aetherius.store import NotFound, Store
from aetherius.watch.health import health_key
from tests.orchestrator.processes import Replica, Replicas, bus_section, write_app_yaml
from tests.orchestrator.test_nats_replicas import pg_url as pg_url
from tests.orchestrator.test_nats_replicas import sim as sim
from tests.services import free_port
from tests.waiting import until

HEARTBEAT = "0.3s"


def spawn_watcher(config: Path, kubeconfig: Path, *, cluster: str, log: Path) -> Replica:
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aetherius",
                "watch",
                "--config",
                str(config),
                "--kubeconfig",
                str(kubeconfig),
                "--health-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
            ],
            env={**os.environ, "CLUSTER_ID": cluster},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return Replica(process=process, log=log)


async def test_a_quiet_cluster_shows_its_standalone_watcher(
    tmp_path: Path, pg_url: str, nats_url: str, sim: SimCluster
) -> None:
    cluster = f"quiet-{secrets.token_hex(3)}"
    bus = bus_section(nats_url)
    config = write_app_yaml(
        tmp_path / "conf",
        bus=bus,
        database={"url": pg_url},
        watcher={"heartbeat_interval": HEARTBEAT},
    )
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
    junk_writer = await open_bus(MessageBusSettings.model_validate(bus), name="test-junk")
    await (await junk_writer.key_value(bus["kv_bucket"])).put(health_key("junk"), b"{not a report")
    await junk_writer.close()
    replicas = Replicas(config=config, kubeconfig=kubeconfig, directory=tmp_path)
    replicas.start(2)
    watcher = spawn_watcher(config, kubeconfig, cluster=cluster, log=tmp_path / "watch.log")
    store = await Store.open(pg_url)

    def logs() -> str:
        return f"--- watcher\n{watcher.text()[-3000:]}\n{replicas.logs()}"

    async def row() -> Any:
        try:
            return await store.get_cluster(cluster)
        except NotFound:
            return None

    async def watched() -> Any:
        found = await row()
        return found if found is not None and found.watcher_health.get("status") == "ok" else None

    try:
        first = await until(watched, timeout=60, what="the watcher's health recorded", explain=logs)
        assert first.detected_by == "env"
        assert first.watcher_health["reported_by"] == "watcher"
        assert first.watcher_health["initial_list_done"] is True

        async def moved_on() -> Any:
            found = await watched()
            return found if found is not None and found.last_seen > first.last_seen else None

        await until(moved_on, timeout=30, what="last_seen kept current without Signals", explain=logs)
        assert await store.count_signals(cluster_id=cluster) == 0, "a quiet cluster: no Signal at all"

        assert watcher.terminate() == 0, logs()

        async def gone() -> Any:
            found = await row()
            return found if found.watcher_health.get("status") == UNREACHABLE else None

        stale = await until(gone, timeout=30, what="the watcher shown unreachable", explain=logs)
        assert stale.watcher_health["reported_status"] == "ok"
        assert all(r.process.poll() is None for r in replicas.started), "junk never crashes a replica"
        for replica in replicas.started:
            assert replica.text().count("watcher health report unreadable") == 1, replica.text()[-3000:]
    finally:
        watcher.kill()
        codes = replicas.stop_all()
        await store.close()
    assert codes == [0, 0], logs()
