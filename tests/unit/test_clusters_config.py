"""``clusters:`` in app.yaml and the repeated ``--kubeconfig``/``--context`` flags of out-of-cluster
mode: valid entries load, a broken one is named by its key, duplicates are refused; and the
cluster status people read (connected, stale, unreachable) from a store row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer

from aetherius.api.cluster_status import cluster_out, cluster_status
from aetherius.cli.common import cluster_flags
from aetherius.config import ConfigError, load_settings


def _load(tmp_path: Path, text: str, **env: str) -> Any:
    (tmp_path / "app.yaml").write_text(text)
    return load_settings(config_paths=[tmp_path / "app.yaml"], env=env)


def test_entries_load_with_names_kubeconfigs_and_contexts(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        "clusters:\n"
        "  - {name: prod-eu, kubeconfig: /k/prod.yaml}\n"
        "  - {kubeconfig: /k/all.yaml, context: staging}\n"
        "  - {context: dev}\n",
    )
    assert [(c.name, c.kubeconfig, c.context) for c in settings.clusters] == [
        ("prod-eu", Path("/k/prod.yaml"), None),
        (None, Path("/k/all.yaml"), "staging"),
        (None, None, "dev"),
    ]
    assert settings.clusters[1].label() == "/k/all.yaml (context staging)"
    assert _load(tmp_path, "log_level: info\n").clusters == []


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            "  - {name: a}\n",
            "app.yaml: clusters.0: Value error, a cluster entry needs a kubeconfig, a context",
        ),
        ("  - {kubeconfig: /a, kubconfig: /b}\n", "app.yaml: clusters.0.kubconfig: unknown key"),
        (
            "  - {name: 'bad name!', kubeconfig: /a}\n",
            "app.yaml: clusters.0.name: String should match pattern",
        ),
        (
            "  - {kubeconfig: /a, context: ''}\n",
            "app.yaml: clusters.0.context: String should have at least 1",
        ),
        ("  - /a/kubeconfig\n", "app.yaml: clusters.0: Input should be a valid dictionary"),
        (
            "  - {name: prod, kubeconfig: /a}\n  - {name: prod, kubeconfig: /b}\n",
            "app.yaml: clusters: Value error, cluster names must be unique: prod given twice",
        ),
        (
            "  - {kubeconfig: /a, context: x}\n  - {kubeconfig: /a, context: x}\n",
            "app.yaml: clusters: Value error, entry 1 repeats entry 0 (same kubeconfig and context)",
        ),
    ],
)
def test_a_broken_entry_is_named_by_its_key(tmp_path: Path, entries: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "clusters:\n" + entries)
    assert message in str(info.value)
    assert str(info.value).startswith("config error: ")


def test_one_cluster_id_for_several_clusters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cluster_id \(CLUSTER_ID\) names one cluster"):
        _load(tmp_path, "clusters:\n  - {kubeconfig: /a}\n  - {kubeconfig: /b}\n", CLUSTER_ID="x")
    assert _load(tmp_path, "clusters:\n  - {kubeconfig: /a}\n", CLUSTER_ID="x").cluster_id == "x"


def test_in_cluster_mode_and_a_clusters_list_do_not_mix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="in-cluster mode reads its own cluster only"):
        _load(tmp_path, "kube: {in_cluster: true}\nclusters:\n  - {kubeconfig: /a}\n")


def test_repeated_flags_make_one_cluster_each() -> None:
    a, b = Path("a.yaml"), Path("b.yaml")
    assert cluster_flags(None, None) == (None, None, None)
    assert cluster_flags([a], ["x"]) == (a, "x", None)  # today's single cluster
    assert cluster_flags([a, b], None) == (None, None, [{"kubeconfig": "a.yaml"}, {"kubeconfig": "b.yaml"}])
    assert cluster_flags(None, ["x", "y"]) == (None, None, [{"context": "x"}, {"context": "y"}])
    assert cluster_flags([a], ["x", "y"]) == (
        None,
        None,
        [{"kubeconfig": "a.yaml", "context": "x"}, {"kubeconfig": "a.yaml", "context": "y"}],
    )
    assert cluster_flags([a, b], ["x", "y"])[2] == [
        {"kubeconfig": "a.yaml", "context": "x"},
        {"kubeconfig": "b.yaml", "context": "y"},
    ]
    with pytest.raises(typer.Exit):
        cluster_flags([a, b], ["x", "y", "z"])


def test_flags_replace_the_files_clusters(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text("clusters:\n  - {name: from-file, kubeconfig: /f}\n")
    _, _, entries = cluster_flags([Path("/a"), Path("/b")], None)
    settings = load_settings(config_paths=[tmp_path / "app.yaml"], env={}, overrides={("clusters",): entries})
    assert [c.kubeconfig for c in settings.clusters] == [Path("/a"), Path("/b")]


@dataclass
class Row:
    id: str = "c1"
    name: str = "c1"
    detected_by: str = "namespace_uid"
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    watcher_health: dict[str, Any] = field(default_factory=dict)


def test_connected_stale_unreachable() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    fresh = now - timedelta(seconds=20)
    assert cluster_status(Row(last_seen=fresh), now=now) == "connected"
    assert cluster_status(Row(last_seen=now - timedelta(minutes=6)), now=now) == "stale"
    assert cluster_status(Row(last_seen=None), now=now) == "stale"
    gone = Row(last_seen=fresh, watcher_health={"status": "unreachable", "seconds_since_report": 50})
    assert cluster_status(gone, now=now) == "unreachable"
    out = cluster_out(Row(last_seen=fresh, watcher_health={"status": "ok", "signals_behind": 7}), now=now)
    assert (out.status, out.watcher_status, out.signals_behind) == ("connected", "ok", 7)
    assert (
        cluster_out(Row(last_seen=fresh, watcher_health={"signals_behind": True}), now=now).signals_behind
        is None
    )
