"""Every scenario of the library diagnosed from its snapshot file yields exactly its expected findings."""

from __future__ import annotations

import re

import pytest

from aetherius.diagnosis.engine import diagnose
from aetherius.diagnosis.model import REASONS, ROOT_CAUSES
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
