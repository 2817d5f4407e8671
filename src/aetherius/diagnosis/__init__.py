"""Diagnosis: from cluster state to root cause, with evidence, through the read-only gateway.

Public API::

    result = await diagnose(gateway, namespace=None, selector=None, scan_id=...)
    result = await diagnose_object(gateway, kind="Pod", namespace="shop", name="api-7d9f8-x2k4q")

``gateway`` is an ``aetherius.gateway.ExecutionGateway`` (``snapshot_gateway(path)`` or
``live_gateway(client, audit=sink)``). The result's findings follow docs/diagnosis-contract.md.
"""

from __future__ import annotations

from aetherius.diagnosis.engine import analyze_state, diagnose, new_scan_id
from aetherius.diagnosis.model import REASONS, ROOT_CAUSES, DiagnosisResult, Finding, Owner
from aetherius.diagnosis.scope import diagnose_object

__all__ = [
    "REASONS",
    "ROOT_CAUSES",
    "DiagnosisResult",
    "Finding",
    "Owner",
    "analyze_state",
    "diagnose",
    "diagnose_object",
    "new_scan_id",
]
