from __future__ import annotations

import pytest

from tests.deploy.rendering import CHART_VALUE_SETS, Doc, all_sources, render_chart, render_kustomize


@pytest.fixture(scope="session")
def kustomized() -> list[Doc]:
    return render_kustomize()


@pytest.fixture(scope="session")
def chart_default() -> list[Doc]:
    return render_chart(CHART_VALUE_SETS["defaults"])


@pytest.fixture(scope="session")
def sources() -> dict[str, list[Doc]]:
    """Every rendered variant: kustomize output and the chart under each value set."""
    return dict(all_sources())
