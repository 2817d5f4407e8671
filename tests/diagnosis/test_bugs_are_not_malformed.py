"""Errors are visible: a bug in an analyzer is told apart from a malformed object, counted apart,
and logged with its traceback; the scan goes on either way."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aetherius.diagnosis.analyzers import service
from aetherius.diagnosis.engine import SKIPPED, analyze_state

SERVICE = {
    "kind": "Service",
    "metadata": {"name": "api", "namespace": "shop"},
    "spec": {"selector": {"a": "b"}},
}


def _buggy(obj: dict[str, object], ctx: object) -> list[object]:
    return [obj["spec"]["ports"]]  # type: ignore[index]  # a lookup an analyzer must not make


def test_an_analyzer_bug_is_said_as_a_bug_not_as_a_malformed_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(service.CHECKS, "Service", _buggy)
    bugs, malformed = SKIPPED.labels(cause="bug")._value.get(), SKIPPED.labels(cause="malformed")._value.get()
    findings, ctx = analyze_state({"Service": [SERVICE]})
    assert findings == []
    (warning,) = [w for w in ctx.warnings if "shop/api" in w]
    assert (
        "internal error in the Service analyzer (KeyError: 'ports')" in warning and "malformed" not in warning
    )
    assert SKIPPED.labels(cause="bug")._value.get() == bugs + 1
    assert SKIPPED.labels(cause="malformed")._value.get() == malformed


def test_a_malformed_object_is_said_as_malformed() -> None:
    malformed = SKIPPED.labels(cause="malformed")._value.get()
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "a"},
        "spec": {"replicas": "three"},
        "status": {},
    }
    _, ctx = analyze_state({"Deployment": [deployment]})
    assert ctx.warnings == ["Deployment a/d skipped: malformed (Malformed: replicas is not an integer)"]
    assert SKIPPED.labels(cause="malformed")._value.get() == malformed + 1


def test_an_analyzer_bug_is_logged_with_its_traceback_on_stderr() -> None:
    script = (
        "from aetherius.logs import configure_logging\n"
        "configure_logging(fmt='json')\n"
        "from aetherius.diagnosis.analyzers import service\n"
        "from aetherius.diagnosis.engine import analyze_state\n"
        "def buggy(obj, ctx):\n"
        "    return [obj['spec']['ports']]\n"
        "service.CHECKS['Service'] = buggy\n"
        f"analyze_state({{'Service': [{SERVICE!r}]}})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert "analyzer failed" in result.stderr and "Traceback (most recent call last)" in result.stderr
    assert "KeyError: 'ports'" in result.stderr and result.stdout == ""
