"""NetworkPolicy semantics for "does a policy let this client in", and the chain that uses it."""

from __future__ import annotations

from typing import Any

import pytest

from aetherius.diagnosis.engine import diagnose
from aetherius.diagnosis.rules.netpol import admits, isolates, selector_matches
from aetherius.gateway import parse_snapshot, snapshot_gateway
from tests.scenarios.library import ROOT


def _policy(ingress: Any, *, types: list[str] | None = None, pods: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pods if pods is not None else {"matchLabels": {"app": "db"}}}
    if ingress is not None:
        spec["ingress"] = ingress
    if types is not None:
        spec["policyTypes"] = types
    return {"metadata": {"name": "p", "namespace": "data"}, "spec": spec}


CLIENT = {"client_namespace": "web", "client_labels": {"app": "web"}, "namespace_labels": {"team": "web"}}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, {"a": "2"}, False),
        ("not a selector", {}, False),
    ],
)
def test_label_selectors(selector: Any, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_which_policies_isolate_and_admit() -> None:
    assert isolates(_policy([]), {"app": "db"})
    assert not isolates(_policy([], types=["Egress"]), {"app": "db"})
    assert not isolates(_policy([]), {"app": "other"})
    assert admits(_policy([{}]), **CLIENT) is True  # a rule without "from" admits everyone
    assert admits(_policy([]), **CLIENT) is False  # isolated, no rule: nothing comes in
    same_namespace_only = [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]
    assert admits(_policy(same_namespace_only), **CLIENT) is False
    by_namespace = [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]}]
    assert admits(_policy(by_namespace), **CLIENT) is True
    both = [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "api"}}}]}]
    assert admits(_policy(both), **CLIENT) is False
    assert admits(_policy([{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]), **CLIENT) is None


async def test_a_policy_in_the_way_is_named_and_one_that_admits_is_not() -> None:
    path = ROOT / "network-chains" / "snapshot.yaml"
    result = await diagnose(snapshot_gateway(path))
    reports = next(f for f in result.findings if f.name == "reports")
    assert (
        "NetworkPolicy warehouse-ingress selects its pods and admits nothing from pod analytics/reports"
        in (reports.summary)
    )
    # The same snapshot with the policy admitting the client's namespace: nothing is blamed on it.
    text = path.read_text().replace(
        "ingress: [{from: [{podSelector: {matchLabels: {app: etl}}}], ports: [{port: 5432}]}]",
        "ingress: [{from: [{podSelector: {matchLabels: {app: etl}}}, {namespaceSelector: {matchLabels: "
        "{kubernetes.io/metadata.name: analytics}}}]}]",
    )
    assert text != path.read_text()
    admitted = await diagnose(snapshot_gateway(parse_snapshot(text.encode())))
    reports = next(f for f in admitted.findings if f.name == "reports")
    assert "NetworkPolicy" not in reports.summary and not reports.chain
