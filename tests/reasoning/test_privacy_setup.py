"""Pseudonyms are stable per installation and bounded by name characters; settings errors name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from aetherius.config import ConfigError, ReasoningSettings, Settings
from aetherius.reasoning.privacy import Pseudonymizer, load_key
from aetherius.reasoning.setup import api_key, build_investigator


def test_pseudonyms_are_stable_per_key_and_map_back() -> None:
    a, b, other = Pseudonymizer(b"k1"), Pseudonymizer(b"k1"), Pseudonymizer(b"k2")
    assert a.add("pod", "web") == b.add("pod", "web") != other.add("pod", "web")
    a.add("pod", "web-1")
    sent = a.outbound("web-1 and web restarted; web-10 did not; password=hunter2xyz")
    assert "web-10" in sent and "web" not in sent.replace("web-10", "") and "hunter2xyz" not in sent
    assert a.inbound(sent).startswith("web-1 and web restarted")


def test_disabled_pseudonyms_still_scrub() -> None:
    p = Pseudonymizer(b"k", enabled=False)
    p.add("pod", "web")
    assert p.outbound("web password=hunter2xyz").startswith("web ") and "hunter2xyz" not in p.outbound(
        "password=hunter2xyz"
    )


def test_the_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_key(None, data_dir=tmp_path)
    assert load_key(None, data_dir=tmp_path) == first and len(first) == 64
    assert (tmp_path / "reasoning-pseudonym.key").stat().st_mode & 0o077 == 0


def test_reasoning_is_off_by_default_and_errors_name_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().reasoning.enabled is False
    missing = ReasoningSettings(
        enabled=True, base_url="http://x/v1", model="m", api_key_file=tmp_path / "nope"
    )
    with pytest.raises(ConfigError, match=r"reasoning\.api_key_file"):
        api_key(missing)
    monkeypatch.setenv("AETHERIUS_REASONING_API_KEY", "sk-test")
    assert api_key(ReasoningSettings()) == "sk-test"
    with pytest.raises(ConfigError, match=r"reasoning\.base_url"):
        build_investigator(ReasoningSettings(enabled=True), data_dir=tmp_path)
