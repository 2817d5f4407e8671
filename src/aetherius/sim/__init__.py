"""The simulated cluster: a Kubernetes API server on loopback over an in-memory cluster.

Placeholder docs; see SimCluster.
"""

from __future__ import annotations

from aetherius.sim.cluster import SimCluster, SimHandle, write_kubeconfig
from aetherius.sim.errors import ApiError
from aetherius.sim.faults import Faults
from aetherius.sim.preload import PreloadResult
from aetherius.sim.store import LedgerEntry

__all__ = [
    "ApiError",
    "Faults",
    "LedgerEntry",
    "PreloadResult",
    "SimCluster",
    "SimHandle",
    "write_kubeconfig",
]
