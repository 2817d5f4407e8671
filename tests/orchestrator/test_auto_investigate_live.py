"""The orchestrator process as ``aetherius orchestrator`` builds it with ``reasoning.enabled`` and
``auto_on_unknown``: its Unknown reports are offered to investigations that read the cluster through
the live gateway (a simulated API server), audited, against the scripted model server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aetherius.bus import MemoryBus
from aetherius.config import load_settings
from aetherius.kube import KubeClient
from aetherius.orchestrator.process import OrchestratorProcess
from aetherius.sim import SimCluster
from aetherius.store import Store
from tests.diagnosis.test_secret_refs import _state, _write
from tests.orchestrator.factories import pod_signal
from tests.reasoning.conftest import KEY
from tests.reasoning.harness import pseudonym
from tests.reasoning.scripted_llm import scripted_llm, text, tool_calls
from tests.store.databases import BACKENDS, db_url_fixture


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from db_url_fixture(request, tmp_path_factory)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimCluster]:
    async with SimCluster(scenario=_write(tmp_path / "cluster.yaml", _state())) as cluster:
        yield cluster


async def test_the_process_wires_auto_investigations_over_the_live_gateway(
    sim: SimCluster, store: Store, tmp_path: Path
) -> None:
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
    (tmp_path / "key").write_bytes(KEY)
    pod = pseudonym("pod", "api")
    script = [
        tool_calls(("get_object", {"kind": "Pod", "name": pod})),
        text(
            {
                "summary": f"{pod} waits on a missing secret",
                "root_cause": "MissingConfiguration",
                "evidence": [{"claim": "the container cannot start", "quote": "CreateContainerConfigError"}],
            }
        ),
    ]
    with scripted_llm(script) as llm:
        settings = load_settings(
            env={},
            overrides={
                ("kube", "kubeconfig"): str(kubeconfig),
                ("cluster_id",): "sim",
                ("message_bus", "url"): "memory://",
                ("reasoning", "enabled"): True,
                ("reasoning", "auto_on_unknown"): True,
                ("reasoning", "base_url"): llm.url,
                ("reasoning", "model"): "scripted-1",
                ("reasoning", "pseudonym_key_file"): str(tmp_path / "key"),
            },
        )
        async with await KubeClient.from_kubeconfig(kubeconfig) as kube:
            process = OrchestratorProcess(settings, store=store, bus=MemoryBus(), kube=kube)
            auto = process.auto
            assert auto is not None and process.role.orchestrator.on_unknown == auto.offer
            signal = pod_signal(
                reason="CreateContainerConfigError", pod="api", rs=None, cluster="sim", container="api"
            )
            handled = await process.role.orchestrator.handle(signal)
            assert handled.incident_id is not None
            # the rules knew this one (MissingConfiguration): nothing was offered, so ask as a person would
            assert await store.list_investigations(int(handled.incident_id)) == []
            started = await auto.investigations.start(int(handled.incident_id), requested_by="ops")
            done = await auto.investigations.wait(started.id)
            await auto.close()
    assert done.ending == "answered", done.answer
    assert [e["verified"] for e in done.answer["evidence"]] == [True]
    assert "api" in done.answer["summary"]  # mapped back from its pseudonym
    read = llm.requests[1]["messages"][-1]["content"]
    assert "CreateContainerConfigError" in read and '"name": "api"' not in read
    audit = await store.list_audit(scan_id=f"investigation:{started.id}")
    assert audit and {a.operation for a in audit} >= {"get"}
