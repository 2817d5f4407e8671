"""The edge agent's probes: served while it waits for central, ready once it reads and publishes,
alive while its watches make progress (the real process, as a pod's kubelet would probe it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.edge.conftest import Fleet
from tests.hub import spawn_agent
from tests.services import free_port
from tests.waiting import until


async def test_probes_say_waiting_for_central_then_ready_and_alive(fleet: Fleet, tmp_path: Path) -> None:
    sim = await fleet.sim("probed", None)
    token = fleet.hub.add("probed")
    await fleet.hub.reload()
    port = free_port()
    fleet.hub.stop()  # central is down when the agent starts
    agent = spawn_agent(
        tmp_path,
        hub_url=fleet.hub.url,
        token=token,
        kubeconfig=sim.write_kubeconfig(tmp_path / "probed.kubeconfig"),
        n=1,
        health_port=port,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def probe(path: str) -> httpx.Response | None:
                try:
                    return await http.get(path)
                except httpx.TransportError:
                    return None

            async def checks(path: str, status: int) -> dict[str, Any] | None:
                response = await probe(path)
                if response is None or response.status_code != status:
                    return None
                found: dict[str, Any] = response.json()["checks"]
                return found

            waiting = await until(
                lambda: checks("/health/ready", 503), timeout=60, what="the probes served", explain=agent.text
            )
            assert waiting["dependencies"]["message"] == "central not connected", waiting
            assert waiting["dependencies"]["healthy"] is False, waiting

            fleet.hub.start()
            ready = await until(
                lambda: checks("/health/ready", 200), timeout=60, what="the agent ready", explain=agent.text
            )
            assert set(ready) == {"api_server", "self_pod", "dependencies", "initial_list"}
            assert ready["dependencies"]["message"] == "central connected"
            assert ready["initial_list"]["message"] == "initial list done"
            live = await checks("/health/live", 200)
            assert live is not None and live["watch_progress"]["healthy"] is True, live
    finally:
        assert agent.terminate() == 0, agent.text()[-3000:]
