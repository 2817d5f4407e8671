"""``aetherius cluster add|remove|list``: member clusters and their NATS credentials (central side).

``add`` prints the member cluster's Secret on stdout, so it can go straight into that cluster
(``aetherius cluster add prod-eu-1 | kubectl --context prod-eu-1 apply -f -``); everything else,
the install command included, goes to stderr. The seed is printed this once and stored nowhere:
central keeps only the public key. Both commands are idempotent and exit 0 when there is nothing
to do; a bad name is one line on stderr and exit 2.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from aetherius.cli.common import ConfigOption, fail, settings_from_cli
from aetherius.fleet.identity import EdgeCredential
from aetherius.fleet.registry import (
    Registry,
    RegistryError,
    ReloadFailed,
    default_auth_dir,
    reload_server,
)
from aetherius.fleet.subjects import InvalidClusterName, check_cluster_name

EDGE_NAMESPACE = "aetherius-system"
EDGE_SECRET = "edge-agent-token"
EDGE_SECRET_KEY = "token"
_ENDPOINT_PLACEHOLDER = "tls://nats.central.example.com:4222"

cluster_app = typer.Typer(
    help="Member clusters of a multi-cluster central: credentials and the NATS users file.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(help="The member cluster's name: a DNS-1123 label.")]
AuthDirOption = Annotated[
    Path | None,
    typer.Option(
        "--auth-dir",
        help="Cluster records, central's key and users.conf (default: ~/.local/share/aetherius/fleet).",
        envvar="AETHERIUS_FLEET_AUTH_DIR",
    ),
]
ReloadOption = Annotated[
    bool,
    typer.Option(
        "--reload/--no-reload", help="Tell the central nats-server to reload (needs --nats-pid-file)."
    ),
]
PidFileOption = Annotated[
    Path | None, typer.Option("--nats-pid-file", help="The central nats-server's pid_file.")
]


def _registry(config: list[Path] | None, auth_dir: Path | None) -> Registry:
    settings = settings_from_cli(config=config, role="cli", configure_logs=False)
    return Registry(auth_dir or default_auth_dir(), bus=settings.message_bus)


@contextlib.contextmanager
def _clear_errors() -> Iterator[None]:
    """A damaged auth directory or an unwritable one is one line on stderr, exit 1."""
    try:
        yield
    except (RegistryError, OSError) as exc:
        raise fail(f"aetherius cluster: {exc}", code=1) from None


def _name(name: str) -> str:
    try:
        return check_cluster_name(name)
    except InvalidClusterName as exc:
        raise fail(f"aetherius cluster: {exc}") from None


def _apply(registry: Registry, *, reload: bool, pid_file: Path | None) -> None:
    """Say where users.conf is, and reload the server when asked to and able to."""
    count = len(registry.records())
    typer.echo(f"{registry.users_file} written ({count} member cluster(s)).", err=True)
    if reload and pid_file is not None:
        try:
            pid = reload_server(pid_file)
        except ReloadFailed as exc:
            raise fail(f"aetherius cluster: {exc}", code=1) from None
        typer.echo(f"nats-server (pid {pid}) told to reload its configuration.", err=True)
    else:
        typer.echo(
            "Apply it: copy it where the central nats-server includes it (in Kubernetes, the "
            "Secret the chart's central mode names) and reload the server "
            "(nats-server --signal reload=<pid>, or --nats-pid-file here).",
            err=True,
        )


def secret_manifest(credential: EdgeCredential) -> str:
    """The member cluster's Secret, as YAML (the token is a quoted scalar: safe as is)."""
    return (
        "# The edge agent's credential for member cluster "
        f"{credential.cluster!r}: apply it in that cluster only.\n"
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata:\n"
        f"  name: {EDGE_SECRET}\n"
        f"  namespace: {EDGE_NAMESPACE}\n"
        "  labels:\n"
        "    app.kubernetes.io/part-of: aetherius\n"
        "    app.kubernetes.io/component: edge-agent\n"
        "type: Opaque\n"
        "stringData:\n"
        f'  {EDGE_SECRET_KEY}: "{credential.token}"\n'
    )


def install_commands(cluster: str, *, central_endpoint: str | None) -> str:
    """How to install the edge agent in the member cluster, with Helm or the raw manifests."""
    endpoint = central_endpoint or _ENDPOINT_PLACEHOLDER
    return (
        f"Install the edge agent in {cluster!r} (after applying the Secret above there):\n"
        f"  helm upgrade --install aetherius deploy/helm/aetherius -n {EDGE_NAMESPACE} --create-namespace \\\n"
        f"    --set mode=edge --set cluster.id={cluster} --set edge.centralEndpoint={endpoint}\n"
        "or without Helm:\n"
        "  kubectl apply -k deploy/manifests/edge-agent\n"
        f"  kubectl -n {EDGE_NAMESPACE} set env deployment/aetherius-edge-agent "
        f"CENTRAL_ENDPOINT={endpoint} CLUSTER_ID={cluster}\n"
    )


@cluster_app.command("add")
def add(
    name: NameArgument,
    auth_dir: AuthDirOption = None,
    central_endpoint: Annotated[
        str | None,
        typer.Option(
            "--central-endpoint", help="The central NATS URL the edge agent dials (tls://host:4222)."
        ),
    ] = None,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Issue a new credential; the old one stops working.")
    ] = False,
    reload: ReloadOption = True,
    nats_pid_file: PidFileOption = None,
    config: ConfigOption = None,
) -> None:
    """Register a member cluster: print its Secret (stdout) and install command, rewrite users.conf."""
    cluster = _name(name)
    registry = _registry(config, auth_dir)
    with _clear_errors():
        existed = registry.get(cluster) is not None
        credential = registry.add(cluster, rotate=rotate)
    if credential is None:
        typer.echo(
            f"Cluster {cluster!r} is already registered; nothing changed "
            "(its token was shown when it was added; --rotate issues a new one).",
            err=True,
        )
        return
    typer.echo(secret_manifest(credential), nl=False)
    verb = "Rotated the credential of" if existed else "Registered"
    typer.echo(f"{verb} cluster {cluster!r} (public key {credential.public_key}).", err=True)
    if existed:
        typer.echo("The previous token stops working once the server has reloaded.", err=True)
    _apply(registry, reload=reload, pid_file=nats_pid_file)
    typer.echo(install_commands(cluster, central_endpoint=central_endpoint), err=True, nl=False)


@cluster_app.command("remove")
def remove(
    name: NameArgument,
    auth_dir: AuthDirOption = None,
    reload: ReloadOption = True,
    nats_pid_file: PidFileOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a member cluster: its key is refused (and its connection closed) after the reload."""
    cluster = _name(name)
    registry = _registry(config, auth_dir)
    with _clear_errors():
        removed = registry.remove(cluster)
    if not removed:
        typer.echo(f"Cluster {cluster!r} is not registered; nothing changed.", err=True)
        return
    typer.echo(f"Removed cluster {cluster!r}.", err=True)
    _apply(registry, reload=reload, pid_file=nats_pid_file)


@cluster_app.command("list")
def list_clusters(auth_dir: AuthDirOption = None, config: ConfigOption = None) -> None:
    """Registered member clusters: name, public key, when added."""
    with _clear_errors():
        records = _registry(config, auth_dir).records()
    for record in records:
        typer.echo(f"{record.cluster}\t{record.public_key}\t{record.created_at}")


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
    app.add_typer(cluster_app, name="cluster")
