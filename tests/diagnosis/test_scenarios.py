"""Every scenario of the library diagnosed from its snapshot file yields exactly its expected findings."""

from __future__ import annotations

import io
import re

import pytest

from aetherius.diagnosis.chains import root_of
from aetherius.diagnosis.engine import diagnose
from aetherius.diagnosis.model import REASONS, ROOT_CAUSES, Link
from aetherius.diagnosis.render import problems, render_text
from aetherius.gateway import snapshot_gateway
from tests.scenarios.library import ROOT, expected, expected_warnings, observed, scenario_names


@pytest.mark.parametrize("name", scenario_names())
async def test_scenario_from_snapshot(name: str) -> None:
    result = await diagnose(snapshot_gateway(ROOT / name / "snapshot.yaml"))
    assert result.warnings == expected_warnings(name), result.warnings
    got, want = observed(result), expected(name)
    assert got == want, f"missing: {sorted(want - got)}\nunexpected: {sorted(got - want)}"
    for finding in result.findings:
        assert finding.evidence and finding.recommendations and finding.summary
        assert finding.reason in REASONS and finding.root_cause in ROOT_CAUSES


def test_library_covers_every_reason_and_root_cause() -> None:
    rows = set().union(*(expected(name) for name in scenario_names()))
    assert set(REASONS) - {row[3] for row in rows} == set()
    assert set(ROOT_CAUSES) - {row[4] for row in rows} == set()


def test_library_has_healthy_lookalikes() -> None:
    assert [name for name in scenario_names() if not expected(name)], "a scenario expecting no finding"


# A container summary names the container, then says what it does or what happened to it.
_CONTAINER_SUMMARY = re.compile(
    r"^(Init container|Container) \S+ (is|was|has|runs|cannot|fails|keeps|restarted|exits|crashes|"
    r"terminated|failed|references|refuses) "
)


@pytest.mark.parametrize("name", scenario_names())
async def test_container_summaries_read_as_sentences(name: str) -> None:
    """The cause's words fit after the container's name ("Container migrate cannot run its command")."""
    result = await diagnose(snapshot_gateway(ROOT / name / "snapshot.yaml"))
    summaries = [
        f.summary
        for f in result.findings
        if f.kind == "Pod" and f.summary.lower().startswith(("container", "init container"))
    ]
    bad = [s for s in summaries if not _CONTAINER_SUMMARY.match(s)]
    assert not bad, bad


async def test_a_database_down_is_one_problem_with_its_root() -> None:
    """postgres-0 OOMKilled → Service db/postgres without endpoints → orders (by name) and invoices
    (by ClusterIP) crash-loop: every finding's chain ends at postgres-0, each hop said in words."""
    result = await diagnose(snapshot_gateway(ROOT / "chain-database" / "snapshot.yaml"))
    by_key = {f.key(): f for f in result.findings}
    roots = {root_of(f, by_key).key() for f in result.findings}
    assert roots == {("Pod", "db", "postgres-0", "CrashLoopBackOff")}
    orders = by_key[("Pod", "shop", "orders-5c6d7-a1b2c", "CrashLoopBackOff")]
    assert orders.caused_by == Link(
        kind="Service", namespace="db", name="postgres", reason="ServiceNoEndpoints"
    )
    assert orders.chain == [
        "postgres.db.svc:5432 is Service db/postgres: Service postgres has no ready endpoint: "
        "1 pod(s) match app=postgres but none is ready."
    ]
    invoices = by_key[("Pod", "billing", "invoices-7f8e9-g5h6i", "CrashLoopBackOff")]
    assert invoices.caused_by is not None and invoices.caused_by.name == "postgres"
    (problem,) = problems(result.findings)
    assert problem.root.name == "postgres-0" and problem.count() == len(result.findings)
    out = io.StringIO()
    render_text(result, file=out, color=False)
    text = out.getvalue()
    assert "1 problem(s): 1 critical — 7 finding(s)" in text
    assert (
        text.index("Pod db/postgres-0")
        < text.index("← Service db/postgres")
        < text.index("Pod shop/orders-5c6d7-a1b2c")
    )


async def test_a_link_never_points_at_a_healthy_lookalike() -> None:
    """A host in a log that is no Service, or a Service whose pods are fine, links to nothing."""
    result = await diagnose(snapshot_gateway(ROOT / "restarts-while-up" / "snapshot.yaml"))
    assert all(f.caused_by is None for f in result.findings)
    result = await diagnose(snapshot_gateway(ROOT / "errors-in-running-logs" / "snapshot.yaml"))
    checkout = next(f for f in result.findings if f.name.startswith("checkout"))
    assert checkout.caused_by is None
    assert checkout.chain == [
        "ledger-api: no Service ledger-api in namespace ops; Service ledger-api exists in namespace "
        "finance: call it ledger-api.finance"
    ]


async def test_an_ingress_in_front_of_a_failing_service_links_to_it() -> None:
    result = await diagnose(snapshot_gateway(ROOT / "network-chains" / "snapshot.yaml"))
    by_key = {f.key(): f for f in result.findings}
    ingress = by_key[("Ingress", "analytics", "reports-web", "IngressBackendUnavailable")]
    assert ingress.caused_by == Link(
        kind="Service", namespace="analytics", name="reports", reason="ServiceNoEndpoints"
    )
    root = root_of(ingress, by_key)
    assert (root.kind, root.name, root.root_cause) == ("Pod", "reports", "DependencyUnavailable")
