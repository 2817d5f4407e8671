"""The scrubber against a corpus of real-world credential shapes, and text that must stay readable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aetherius.scrub import scrub_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "secrets"
CANARIES: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "canaries.yaml").read_text())
READABLE: list[str] = yaml.safe_load((FIXTURES / "readable.yaml").read_text())


def test_the_corpus_is_large_and_every_canary_is_distinct() -> None:
    assert len(CANARIES) >= 60
    secrets = [c["secret"] for c in CANARIES]
    assert len(set(secrets)) == len(secrets)
    assert all(c["secret"] in c["text"] for c in CANARIES)


@pytest.mark.parametrize("case", CANARIES, ids=[c["shape"] for c in CANARIES])
def test_no_credential_shape_survives_the_scrubber(case: dict[str, Any]) -> None:
    scrubbed = scrub_text(case["text"])
    assert case["secret"] not in scrubbed, scrubbed
    assert "[REDACTED]" in scrubbed
    assert scrub_text(scrubbed) == scrubbed, "scrubbing twice changes nothing"


@pytest.mark.parametrize("text", READABLE)
def test_text_that_only_mentions_credentials_stays_readable(text: str) -> None:
    assert scrub_text(text) == text
