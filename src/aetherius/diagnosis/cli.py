"""``aetherius diagnose`` and ``aetherius snapshot`` (see docs/diagnosis-contract.md for the
promises: output shape, exit codes 0-4, ``--fail-on``)."""

from __future__ import annotations

import asyncio
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from aetherius.cli.common import ContextOption, KubeconfigOption, fail
from aetherius.diagnosis.model import SEVERITY_RANK, DiagnosisResult

EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_FINDINGS = 3
EXIT_UNREADABLE = 4


class Output(StrEnum):
    text = "text"
    json = "json"


class FailOn(StrEnum):
    warning = "warning"
    critical = "critical"


async def _diagnose_live(
    *,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    selector: str | None,
    progress: bool,
    secret_metadata: bool = False,
) -> DiagnosisResult:
    from aetherius.diagnosis.engine import diagnose
    from aetherius.gateway import live_gateway
    from aetherius.kube import KubeClient

    client = await KubeClient.from_kubeconfig(kubeconfig, context=context) if kubeconfig else None
    if client is None:
        from aetherius.config import KubeSettings

        client = await KubeClient.from_settings(KubeSettings(context=context))
    async with client:
        gateway = live_gateway(client, cluster=context or "", secret_metadata=secret_metadata)
        if not progress:
            return await diagnose(gateway, namespace=namespace, selector=selector)
        from rich.console import Console

        console = Console(stderr=True)
        with console.status("scanning the cluster…") as status:
            return await diagnose(
                gateway, namespace=namespace, selector=selector, progress=lambda m: status.update(m)
            )


def diagnose_command(
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    snapshot: Annotated[
        Path | None,
        typer.Option("--snapshot", help="Diagnose a snapshot file (JSON or YAML) instead of a live cluster."),
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Only this namespace.")] = None,
    selector: Annotated[
        str | None,
        typer.Option("-l", "--selector", help="Only objects with these labels (app=api,tier!=db)."),
    ] = None,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="text for a person, json for scripts.")
    ] = Output.text,
    fail_on: Annotated[
        FailOn | None, typer.Option("--fail-on", help="Exit 3 when a finding has at least this severity.")
    ] = None,
    secret_metadata: Annotated[
        bool,
        typer.Option(
            "--secret-metadata",
            help="Live: list Secrets metadata-only to check references (needs 'list secrets' RBAC).",
        ),
    ] = False,
) -> None:
    """Find what is broken and why, with evidence and fixes (live cluster or snapshot file)."""
    from aetherius.logs import configure_logging

    configure_logging(level="warning")  # on stderr: stdout is the report (JSON for scripts)
    from aetherius.diagnosis.engine import ClusterUnreadable, diagnose
    from aetherius.diagnosis.render import render_json, render_text
    from aetherius.gateway import SnapshotError, snapshot_gateway
    from aetherius.gateway.snapshot import paused_gc
    from aetherius.kube import KubeConnectionError
    from aetherius.kube.credentials import CredentialsError

    try:
        if snapshot is not None:
            with paused_gc():  # one pause for reading and diagnosing (see paused_gc)
                result = asyncio.run(
                    diagnose(snapshot_gateway(snapshot), namespace=namespace, selector=selector)
                )
        else:
            result = asyncio.run(
                _diagnose_live(
                    kubeconfig=kubeconfig,
                    context=context,
                    namespace=namespace,
                    selector=selector,
                    progress=sys.stderr.isatty(),
                    secret_metadata=secret_metadata,
                )
            )
    except SnapshotError as exc:
        raise fail(f"error: {exc}") from None
    except ValueError as exc:  # a bad selector
        raise fail(f"error: {exc}") from None
    except CredentialsError as exc:
        raise fail(f"error: {exc}") from None
    except (ClusterUnreadable, KubeConnectionError) as exc:
        raise fail(
            f"error: the cluster could not be read, nothing was diagnosed: {exc}", code=EXIT_UNREADABLE
        ) from None
    except Exception as exc:
        raise fail(f"internal error: {type(exc).__name__}: {exc}", code=EXIT_INTERNAL) from None
    if output is Output.json:
        sys.stdout.buffer.write(render_json(result))
        sys.stdout.flush()
    else:
        render_text(result)
    worst = result.worst()
    if fail_on is not None and worst is not None and SEVERITY_RANK[worst] >= SEVERITY_RANK[fail_on.value]:
        raise typer.Exit(EXIT_FINDINGS)


def snapshot_command(
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write (JSON).")],
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Only this namespace.")] = None,
) -> None:
    """Capture the live state (and logs of failing containers) into a redacted snapshot file."""
    from aetherius.diagnosis.capture import capture
    from aetherius.diagnosis.engine import ClusterUnreadable
    from aetherius.kube import KubeClient, KubeConnectionError
    from aetherius.kube.credentials import CredentialsError

    async def run() -> int:
        client = await KubeClient.from_kubeconfig(kubeconfig, context=context) if kubeconfig else None
        if client is None:
            from aetherius.config import KubeSettings

            client = await KubeClient.from_settings(KubeSettings(context=context))
        async with client:
            return await capture(client, output, namespace=namespace, cluster=context or "")

    try:
        count = asyncio.run(run())
    except CredentialsError as exc:
        raise fail(f"error: {exc}") from None
    except (ClusterUnreadable, KubeConnectionError) as exc:
        raise fail(
            f"error: the cluster could not be read, no snapshot written: {exc}", code=EXIT_UNREADABLE
        ) from None
    except OSError as exc:
        raise fail(f"error: cannot write {output}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {count} objects to {output}", err=True)


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
    app.command("diagnose")(diagnose_command)
    app.command("snapshot")(snapshot_command)
