"""``kube.secret_metadata`` reaches the gateways the roles build: the orchestrator's and the API's.

With it off (the default) a missing Secret is named from the kubelet's words, the scan and the
incident's report say its existence was not checked, and not one request for Secrets reaches the
server; with it on, the scan lists Secrets metadata-only, the per-incident diagnosis
(``diagnose_object``) gets the Secrets the pod references, metadata-only, and the caveat is gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aetherius.api.diagnosis import live_diagnose
from aetherius.bus import MemoryBus
from aetherius.config import Settings, load_settings
from aetherius.diagnosis.context import SECRETS_NOT_CHECKED
from aetherius.gateway import LiveBackend
from aetherius.kube import KubeClient
from aetherius.orchestrator.diagnose import EngineDiagnoser
from aetherius.orchestrator.model import Incident
from aetherius.orchestrator.process import OrchestratorProcess
from aetherius.signals import ObjectRef
from aetherius.sim import SimCluster
from aetherius.store import Store
from tests.diagnosis.test_secret_refs import _state, _write
from tests.orchestrator.test_diagnose import store as store


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimCluster]:
    async with SimCluster(scenario=_write(tmp_path / "cluster.yaml", _state())) as cluster:
        yield cluster


def settings_with(*, secret_metadata: bool, kubeconfig: str) -> Settings:
    return load_settings(
        env={},
        overrides={
            ("kube", "secret_metadata"): secret_metadata,
            ("kube", "kubeconfig"): kubeconfig,
            ("cluster_id",): "sim",
            ("message_bus", "url"): "memory://",
        },
    )


def api_incident() -> Incident:
    now = datetime.now(UTC)
    return Incident(
        id="1",
        cluster_id="sim",
        fingerprint="fp-api",
        workload=ObjectRef(kind="Pod", namespace="shop", name="api"),
        state="open",
        severity="warning",
        reason="CreateContainerConfigError",
        objects=["Pod/shop/api"],
        signal_count=1,
        first_seen=now,
        last_seen=now,
    )


def evidence_of(findings: list[dict[str, Any]], name: str) -> list[str]:
    return [line for f in findings if f["name"] == name for line in f["evidence"]]


@pytest.mark.parametrize("secret_metadata", [False, True])
async def test_orchestrator_and_api_gateways_follow_the_setting(
    sim: SimCluster, store: Store, tmp_path: Path, secret_metadata: bool
) -> None:
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
    settings = settings_with(secret_metadata=secret_metadata, kubeconfig=str(kubeconfig))
    sent = sim.record_responses("/api/v1/")
    async with await KubeClient.from_kubeconfig(kubeconfig) as kube:
        process = OrchestratorProcess(settings, store=store, bus=MemoryBus(), kube=kube)
        diagnoser = process.role.orchestrator.diagnoser
        assert isinstance(diagnoser, EngineDiagnoser)
        backend = diagnoser.readers.backend_for("sim")
        assert isinstance(backend, LiveBackend)
        assert backend.secret_metadata is secret_metadata
        report = await diagnoser.diagnose(api_incident(), diagnosis_id="d-1")
        scan = await live_diagnose(kube, store=store, cluster="sim", secret_metadata=secret_metadata)(
            "shop", None
        )
    assert report.root_cause == "MissingConfiguration"
    scanned = evidence_of(scan["findings"], "api")
    secret_requests = [s for s in sent if "/secrets" in s.path]
    checked = "no Secret named db-credentials in namespace shop (Secrets' metadata checked)"
    if secret_metadata:
        assert SECRETS_NOT_CHECKED not in scanned and checked in scanned
        assert SECRETS_NOT_CHECKED not in report.evidence and checked in report.evidence
        assert secret_requests, "Secrets were listed (metadata only) to check the reference"
        assert all("as=PartialObjectMetadata" in s.accept for s in secret_requests)
    else:
        assert SECRETS_NOT_CHECKED in scanned and SECRETS_NOT_CHECKED in report.evidence
        assert secret_requests == []
