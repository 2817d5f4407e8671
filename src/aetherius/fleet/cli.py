"""``aetherius cluster add|remove|list``: member clusters and their NATS credentials (central side).

``add`` prints the member cluster's Secret on stdout, so it can go straight into that cluster
(``aetherius cluster add prod-eu-1 | kubectl --context prod-eu-1 apply -f -``); everything else,
the install command included, goes to stderr. The seed is printed this once and stored nowhere:
central keeps only the public key. Both commands are idempotent and exit 0 when there is nothing
to do; a bad name is one line on stderr and exit 2.

``add --leaf-domain`` makes a leaf member (``aetherius.fleet.leaf``): its Secret also holds its
leaf nats-server's configuration, and central's streams are made to source it, as central's
NATS user (``message_bus.url``); ``add`` and ``remove`` keep those sources equal to the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from aetherius.bus.base import BusUnavailable
from aetherius.bus.nats import NatsBus, NatsIdentity
from aetherius.cli.common import ConfigOption, fail, settings_from_cli
from aetherius.config import LEAF_DOMAIN, MessageBusSettings
from aetherius.fleet.identity import EdgeCredential, central_seed
from aetherius.fleet.leaf import check_leaf_url, leaf_server_config, sync_sources
from aetherius.fleet.registry import (
    Registry,
    RegistryError,
    ReloadFailed,
    default_auth_dir,
    reload_server,
)
from aetherius.fleet.subjects import InvalidClusterName, check_cluster_name
from aetherius.logs import configure_logging

EDGE_NAMESPACE = "aetherius-system"
EDGE_SECRET = "edge-agent-token"
EDGE_SECRET_KEY = "token"
_ENDPOINT_PLACEHOLDER = "tls://nats.central.example.com:4222"
_LEAF_ENDPOINT_PLACEHOLDER = "tls://nats.central.example.com:7422"
LEAF_CONFIG_KEY = "leaf.conf"

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


def _registry(config: list[Path] | None, auth_dir: Path | None) -> tuple[Registry, MessageBusSettings]:
    """The registry, and central's bus settings (the leaf members' sources are set through them)."""
    settings = settings_from_cli(config=config, role="cli", configure_logs=False)
    return Registry(auth_dir or default_auth_dir(), bus=settings.message_bus), settings.message_bus


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


def _sync_sources(registry: Registry, bus: MessageBusSettings) -> None:
    """Central's streams source exactly the registry's leaf members (as central's NATS user)."""

    # The bus logs what it does; here that goes to stderr and only when something is wrong.
    configure_logging(level="warning", role="cli")

    async def sync() -> bool:
        central = NatsBus(
            bus, name="aetherius-cluster", identity=NatsIdentity(seed=central_seed(registry.auth_dir))
        )
        try:
            await central.connect()
            return await sync_sources(central, registry.records())
        finally:
            await central.close()

    try:
        changed = asyncio.run(sync())
    except BusUnavailable as exc:
        raise fail(
            f"aetherius cluster: central's stream sources are not set ({exc}); "
            f"run the same command again once {bus.url} is reachable",
            code=1,
        ) from None
    count = len(registry.leaf_members())
    state = "now source" if changed else "already source"
    typer.echo(f"Central's streams {state} {count} leaf member(s).", err=True)


def leaf_config(credential: EdgeCredential, *, domain: str, central_leaf_endpoint: str | None) -> str:
    """The member's leaf nats-server configuration, as its StatefulSet mounts it."""
    return leaf_server_config(
        credential,
        domain=domain,
        central_leaf_url=central_leaf_endpoint or _LEAF_ENDPOINT_PLACEHOLDER,
        listen="0.0.0.0:4222",
        store_dir="/data",
    )


def secret_manifest(credential: EdgeCredential, *, leaf_conf: str = "") -> str:
    """The member cluster's Secret, as YAML (the token is a quoted scalar: safe as is)."""
    leaf = ""
    if leaf_conf:
        leaf = f"  {LEAF_CONFIG_KEY}: |\n" + "".join(f"    {line}\n" for line in leaf_conf.splitlines())
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
        f"{leaf}"
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
    leaf_domain: Annotated[
        str | None,
        typer.Option(
            "--leaf-domain",
            help="Leaf mode: the JetStream domain of the member's leaf nats-server (edge-NAME); "
            "central's streams source the cluster's Signals from there.",
        ),
    ] = None,
    central_leaf_endpoint: Annotated[
        str | None,
        typer.Option(
            "--central-leaf-endpoint",
            help="Leaf mode: central's leafnode listener the leaf server dials (tls://host:7422).",
        ),
    ] = None,
    reload: ReloadOption = True,
    nats_pid_file: PidFileOption = None,
    config: ConfigOption = None,
) -> None:
    """Register a member cluster: print its Secret (stdout) and install command, rewrite users.conf."""
    cluster = _name(name)
    domain = leaf_domain or ""
    if domain and not LEAF_DOMAIN.fullmatch(domain):
        raise fail(f"aetherius cluster: --leaf-domain {domain[:80]!r}: 1-63 letters, digits, '-' and '_'")
    if central_leaf_endpoint:
        try:
            check_leaf_url(central_leaf_endpoint)
        except ValueError as exc:
            raise fail(f"aetherius cluster: --central-leaf-endpoint {exc}") from None
    registry, bus = _registry(config, auth_dir)
    with _clear_errors():
        previous = registry.get(cluster)
        credential = registry.add(cluster, rotate=rotate, leaf_domain=domain)
    existed = previous is not None
    if credential is None:
        typer.echo(
            f"Cluster {cluster!r} is already registered; nothing changed "
            "(its token was shown when it was added; --rotate issues a new one).",
            err=True,
        )
        if domain:
            _sync_sources(registry, bus)
        return
    leaf_conf = (
        leaf_config(credential, domain=domain, central_leaf_endpoint=central_leaf_endpoint) if domain else ""
    )
    typer.echo(secret_manifest(credential, leaf_conf=leaf_conf), nl=False)
    verb = "Rotated the credential of" if existed else "Registered"
    typer.echo(f"{verb} cluster {cluster!r} (public key {credential.public_key}).", err=True)
    if existed:
        typer.echo("The previous token stops working once the server has reloaded.", err=True)
    _apply(registry, reload=reload, pid_file=nats_pid_file)
    if domain or (previous is not None and previous.leaf_domain):
        _sync_sources(registry, bus)
    if domain:
        typer.echo(
            f"Leaf mode: run nats-server in {cluster!r} with the Secret's {LEAF_CONFIG_KEY} and the edge "
            f"agent with fleet.leaf_domain={domain} and its endpoint at that server (docs/multi-cluster.md).",
            err=True,
        )
        return
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
    registry, bus = _registry(config, auth_dir)
    record = None
    # NB: a damaged record is removed all the same (that is how it is cleared); its sources, if
    # it had any, are set right by the next leaf member's add or remove.
    with contextlib.suppress(RegistryError):
        record = registry.get(cluster)
    with _clear_errors():
        removed = registry.remove(cluster)
    if not removed:
        typer.echo(f"Cluster {cluster!r} is not registered; nothing changed.", err=True)
        return
    typer.echo(f"Removed cluster {cluster!r}.", err=True)
    _apply(registry, reload=reload, pid_file=nats_pid_file)
    if record is not None and record.leaf_domain:
        _sync_sources(registry, bus)


@cluster_app.command("list")
def list_clusters(auth_dir: AuthDirOption = None, config: ConfigOption = None) -> None:
    """Registered member clusters: name, public key, when added."""
    with _clear_errors():
        records = _registry(config, auth_dir)[0].records()
    for record in records:
        leaf = f"\tleaf {record.leaf_domain}" if record.leaf_domain else ""
        typer.echo(f"{record.cluster}\t{record.public_key}\t{record.created_at}{leaf}")


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
    app.add_typer(cluster_app, name="cluster")
