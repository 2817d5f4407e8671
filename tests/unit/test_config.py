from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from aetherius.config import ConfigError, load_settings, parse_duration

SEED_WATCHER = """\
namespaces: []
resync_period: 30m
event_types:
  - "Warning"
reason_filters:
  - "OOMKilled"
  - "CrashLoopBackOff"
min_severity: "Warning"
worker_count: 5
buffer_size: 1000
"""
SEED_APP = """\
log_level: "info"
log_format: "json"
message_bus:
  url: "nats://nats.aetherius-system.svc.cluster.local:4222"
  reconnect_delay: 2s
  max_reconnect_attempts: 10
metrics:
  enabled: true
  port: 9090
  path: "/metrics"
health:
  port: 8080
  liveness_path: "/health/live"
  readiness_path: "/health/ready"
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "watcher.yaml").write_text(SEED_WATCHER)
    (tmp_path / "app.yaml").write_text(SEED_APP)
    return tmp_path


def test_seed_files_load_and_the_sibling_comes_along(config_dir: Path) -> None:
    settings = load_settings(config_paths=[config_dir / "watcher.yaml"], env={})
    assert settings.watcher.resync_period == timedelta(minutes=30)
    assert settings.watcher.min_severity == "warning"
    assert settings.watcher.reason_filters == ["OOMKilled", "CrashLoopBackOff"]
    assert settings.message_bus.reconnect_delay == timedelta(seconds=2)
    assert settings.message_bus.url.startswith("nats://nats.aetherius-system")


def test_environment_overrides_files_and_flags_override_environment(config_dir: Path) -> None:
    env = {"CLUSTER_ID": "prod-eu", "LOG_LEVEL": "debug", "AETHERIUS_WATCHER__WORKER_COUNT": "9"}
    settings = load_settings(config_paths=[config_dir], env=env, overrides={("log_level",): "error"})
    assert settings.cluster_id == "prod-eu"
    assert settings.watcher.worker_count == 9
    assert settings.log_level == "error"


def test_bad_value_names_key_and_file(config_dir: Path) -> None:
    (config_dir / "watcher.yaml").write_text(SEED_WATCHER.replace("worker_count: 5", "worker_count: many"))
    with pytest.raises(ConfigError) as info:
        load_settings(config_paths=[config_dir / "watcher.yaml"], env={})
    message = str(info.value)
    assert "watcher.yaml" in message and "worker_count" in message and "\n" not in message


def test_unknown_key_and_bad_env_are_named(config_dir: Path) -> None:
    (config_dir / "app.yaml").write_text(SEED_APP + "colour: blue\n")
    with pytest.raises(ConfigError, match=r"app.yaml: colour: unknown key"):
        load_settings(config_paths=[config_dir], env={})
    (config_dir / "app.yaml").write_text(SEED_APP)
    with pytest.raises(ConfigError, match=r"environment AETHERIUS_MESSAGE_BUS__URL: message_bus.url"):
        load_settings(config_paths=[config_dir], env={"AETHERIUS_MESSAGE_BUS__URL": "http://x"})


def test_broken_yaml_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "app.yaml"
    bad.write_text("log_level: [unclosed\n")
    with pytest.raises(ConfigError, match=r"app.yaml: line \d+"):
        load_settings(config_paths=[bad], env={})


@pytest.mark.parametrize(
    ("text", "seconds"), [("2s", 2), ("30m", 1800), ("1h30m", 5400), ("250ms", 0.25), ("15", 15), (3, 3)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "-3", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_mistake_of_a_config_is_reported_one_line_each(config_dir: Path) -> None:
    (config_dir / "watcher.yaml").write_text(SEED_WATCHER.replace("worker_count: 5", "worker_count: many"))
    (config_dir / "app.yaml").write_text(
        SEED_APP.replace('log_level: "info"', 'log_level: "loud"') + "colour: blue\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config_paths=[config_dir], env={})
    lines = str(info.value).splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith("config error: ") for line in lines)
    assert any("watcher.yaml: worker_count:" in line for line in lines)
    assert any("app.yaml: log_level:" in line for line in lines)
    assert any("app.yaml: colour: unknown key" in line for line in lines)
