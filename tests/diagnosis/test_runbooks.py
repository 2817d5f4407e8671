"""Every reason has a runbook in the package, and every finding names one that exists."""

from __future__ import annotations

import pytest

from aetherius.diagnosis.engine import diagnose
from aetherius.diagnosis.model import REASONS, slug
from aetherius.diagnosis.runbooks import runbook_text
from aetherius.gateway import snapshot_gateway
from tests.scenarios.library import ROOT, scenario_names


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_has_a_runbook(reason: str) -> None:
    text = runbook_text(slug(reason))
    assert text is not None, f"no runbook {slug(reason)}.md"
    assert text.startswith(f"# {reason}\n")
    for section in ("## What it means", "## How to confirm", "## How to fix"):
        assert section in text
    assert "kubectl" in text


def test_missing_runbook_is_none() -> None:
    assert runbook_text("no-such-reason") is None


async def test_findings_name_existing_runbooks() -> None:
    for name in scenario_names():
        result = await diagnose(snapshot_gateway(ROOT / name / "snapshot.yaml"))
        for finding in result.findings:
            assert runbook_text(finding.runbook) is not None, finding.runbook
