"""Options every role shares, and the one way a command turns them into ``Settings``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aetherius.config import ConfigError, Settings, load_settings
from aetherius.logs import configure_logging

ConfigOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--config",
        help="watcher.yaml, app.yaml or a directory holding them; may be repeated.",
        envvar="AETHERIUS_CONFIG",
    ),
]
LogLevelOption = Annotated[str | None, typer.Option("--log-level", help="debug, info, warning, error")]
InClusterOption = Annotated[
    bool, typer.Option("--in-cluster", help="Use the pod's ServiceAccount instead of a kubeconfig.")
]
KubeconfigOption = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="Path to a kubeconfig (default: $KUBECONFIG, ~/.kube/config)."),
]
ContextOption = Annotated[str | None, typer.Option("--context", help="kubeconfig context to use.")]
KubeconfigsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--kubeconfig",
        help="Path to a kubeconfig (default: $KUBECONFIG, ~/.kube/config); repeat it to watch "
        "several clusters from outside them, one per kubeconfig.",
    ),
]
ContextsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--context", help="kubeconfig context to use; repeat it to watch several contexts' clusters."
    ),
]
BusOption = Annotated[
    str | None,
    typer.Option("--bus", help="nats://host:port (JetStream) or memory:// (in-process, for trying it out)."),
]

EXIT_BAD_INPUT = 2


def fail(message: str, *, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print one clear line on stderr and return the Exit to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def cluster_flags(
    kubeconfigs: list[Path] | None, contexts: list[str] | None
) -> tuple[Path | None, str | None, list[dict[str, str]] | None]:
    """``(kubeconfig, context, clusters)`` from repeatable ``--kubeconfig``/``--context`` flags.

    One of each (or none) is today's single cluster; several kubeconfigs are one cluster each (in
    the ``--context`` given, if one), several contexts are one cluster each (of the one kubeconfig
    given, or the default one), and as many of both are taken in pairs.
    """
    paths, names = list(kubeconfigs or []), list(contexts or [])
    if len(paths) <= 1 and len(names) <= 1:
        return (paths[0] if paths else None), (names[0] if names else None), None
    if len(paths) > 1 and len(names) > 1 and len(paths) != len(names):
        raise fail(
            f"{len(paths)} --kubeconfig and {len(names)} --context: give one of them once, "
            "or as many of each (taken in pairs)"
        )
    count = max(len(paths), len(names))
    entries: list[dict[str, str]] = []
    for index in range(count):
        entry: dict[str, str] = {}
        path = paths[index] if len(paths) > 1 else (paths[0] if paths else None)
        name = names[index] if len(names) > 1 else (names[0] if names else None)
        if path is not None:
            entry["kubeconfig"] = str(path)
        if name is not None:
            entry["context"] = name
        entries.append(entry)
    return None, None, entries


def settings_from_cli(
    *,
    config: list[Path] | None,
    log_level: str | None = None,
    in_cluster: bool = False,
    kubeconfig: Path | None = None,
    context: str | None = None,
    clusters: list[dict[str, str]] | None = None,
    overrides: dict[tuple[str, ...], Any] | None = None,
    role: str,
    configure_logs: bool = True,
) -> Settings:
    """Load settings (exit 2 with a one-line message on any problem) and configure logging."""
    flags: dict[tuple[str, ...], Any] = {
        ("log_level",): log_level,
        ("kube", "kubeconfig"): str(kubeconfig) if kubeconfig else None,
        ("kube", "context"): context,
        ("kube", "in_cluster"): True if in_cluster else None,
        ("clusters",): clusters,
    }
    flags.update(overrides or {})
    try:
        settings = load_settings(config_paths=config, overrides=flags)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if configure_logs:
        configure_logging(
            level=settings.log_level, fmt=settings.log_format, role=role, cluster_id=settings.cluster_id
        )
    return settings
