"""``aetherius agent --mode node|edge``: the agents that run beside or inside a cluster.

Registered by the fleet room (above the agent and watch rooms) because the edge agent is a
watcher and a gateway together; each mode imports only what it runs.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated

import typer

from aetherius.cli.common import (
    BusOption,
    ConfigOption,
    ContextOption,
    InClusterOption,
    KubeconfigOption,
    LogLevelOption,
    fail,
    settings_from_cli,
)


class Mode(StrEnum):
    node = "node"
    edge = "edge"


def agent(
    mode: Annotated[
        Mode,
        typer.Option(
            "--mode",
            help="node: the per-node agent (a DaemonSet); edge: a member cluster's agent, dialing out to central.",
        ),
    ],
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    in_cluster: InClusterOption = False,
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    bus: BusOption = None,
    node_name: Annotated[str | None, typer.Option("--node-name", help="Default: $NODE_NAME.")] = None,
    kubelet_url: Annotated[
        str | None, typer.Option("--kubelet-url", help="Default: https://$NODE_IP:10250.")
    ] = None,
    central_endpoint: Annotated[
        str | None,
        typer.Option(
            "--central-endpoint",
            help="edge: central NATS (nats://, tls://, wss://), or in leaf mode (fleet.leaf_domain) "
            "the member's own leaf server; default $CENTRAL_ENDPOINT.",
        ),
    ] = None,
    health_port: Annotated[int | None, typer.Option("--health-port", help="Default 8080.")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Default 9090.")] = None,
    ready_file: Annotated[
        str | None,
        typer.Option("--ready-file", help="Write '<health port> <metrics port>' here once started."),
    ] = None,
) -> None:
    """Run an agent beside the cluster: the node agent reads its kubelet's pressure and its kernel's
    records (OOM kills, read-only file systems, I/O errors) and publishes Signals to the bus; the
    edge agent watches a member cluster and answers central's reads for it, dialing out only."""
    settings = settings_from_cli(
        config=config,
        log_level=log_level,
        in_cluster=in_cluster,
        kubeconfig=kubeconfig,
        context=context,
        overrides={
            ("message_bus", "url"): bus,
            ("health", "port"): health_port,
            ("metrics", "port"): metrics_port,
            ("node_agent", "node_name"): node_name,
            ("node_agent", "kubelet_url"): kubelet_url,
            ("fleet", "central_endpoint"): central_endpoint,
        },
        role=f"agent-{mode.value}",
    )
    from aetherius.agent.service import run_node_agent
    from aetherius.fleet.edge import run_edge_agent
    from aetherius.ops.serve import StartupError

    role = run_edge_agent if mode is Mode.edge else run_node_agent
    try:
        code = asyncio.run(role(settings, ready_file=ready_file))
    except StartupError as exc:
        raise fail(f"aetherius agent: {exc}", code=1) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
    app.command(name="agent")(agent)
