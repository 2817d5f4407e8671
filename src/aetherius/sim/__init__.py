"""The simulated cluster: a Kubernetes-API-compatible server on loopback over in-memory state.

Tests, benchmarks and the demo talk to it over real HTTP with real clients (our ``KubeClient``,
the official ``kubernetes`` client, ``kubectl``). Public API::

    from aetherius.sim import SimCluster

    async with SimCluster(scenario="demo" | Path | None, history_size=10_000, bookmark_interval=1.0) as sim:
        sim.url                                   # "http://127.0.0.1:PORT"
        sim.write_kubeconfig(path, token=...) -> Path  # token user, current-context set
        sim.grant(token, rules, namespace=None)   # RBAC rules a SelfSubjectRulesReview answers
        sim.create(obj) -> dict; sim.update(obj) -> dict; sim.patch(kind, ns, name, merge) -> dict
        sim.delete(kind, ns, name) -> dict; sim.get(kind, ns, name) -> dict (ApiError 404)
        sim.find(kind, ns, name) -> dict | None; sim.list(kind, ns=None) -> list[dict]
        sim.add_logs(ns, pod, container, text, previous=False)
        sim.resource_version -> int               # one global counter, +1 per change
        sim.ledger -> list[LedgerEntry]           # (rv, type, kind, namespace, name, uid) per change
        sim.record_responses(path_prefix) -> list[SentResponse]  # bodies as sent, for wire proofs
        sim.faults.close_watches(abort=False); sim.faults.gone_on_connect(n, in_stream=False)
        sim.faults.gone_in_stream(); sim.faults.throttle(n, retry_after=1.0, path_prefix=None)
        sim.faults.error(n, status=500, path_prefix=None); sim.faults.stall(seconds)
        sim.faults.expire_continue_tokens(); sim.faults.reset(); sim.faults.injected  # Counter
        await sim.faults.paged_list_started()     # a page with a continue token went out (in-loop only)
        sim.timeline.advance(seconds) -> int; sim.timeline.run_to_end() -> int; sim.timeline.now
        sim.preload_events(n, namespace="bench", store_objects=False) -> PreloadResult

    handle = SimCluster.start_in_thread("demo")   # for synchronous tests (kubectl, sync clients)
    handle.url; handle.write_kubeconfig(path); handle.sim.create(...); handle.faults.stall(2)
    handle.timeline.run_to_end(); handle.ledger; handle.stop()

``kind`` is a kind (``"Pod"``), a resource (``"pods"``) or a qualified resource
(``"deployments.apps"``, ``"events.events.k8s.io"``). The ledger holds one entry per change in
resourceVersion order: what every watch from the start would have received (watchers filter it
by kind/namespace); synthetic ADDED events of ``resourceVersion=""``/``"0"`` watches and
BOOKMARKs are not changes and are not in it. See ``README.md`` in this package for the HTTP
surface, faults over ``/_sim/``, scenarios and the timeline format.
"""

from __future__ import annotations

from aetherius.sim.cluster import SimCluster, SimHandle, write_kubeconfig
from aetherius.sim.errors import ApiError
from aetherius.sim.faults import Faults
from aetherius.sim.preload import PreloadResult
from aetherius.sim.scenario import Scenario, ScenarioError, load_scenario
from aetherius.sim.server import SentResponse
from aetherius.sim.store import LedgerEntry

__all__ = [
    "ApiError",
    "Faults",
    "LedgerEntry",
    "PreloadResult",
    "Scenario",
    "ScenarioError",
    "SentResponse",
    "SimCluster",
    "SimHandle",
    "load_scenario",
    "write_kubeconfig",
]
