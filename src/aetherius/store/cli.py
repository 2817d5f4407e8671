"""Subcommands of the store room: ``db``, ``incidents`` and ``token``.

Every command reads the database URL from the settings (``database.url`` in app.yaml,
``AETHERIUS_DATABASE_URL``) unless ``--database-url`` is given, and turns any store problem into
one line on stderr: exit 2 for bad input, 1 when the database is unreachable or out of date.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from aetherius.cli.common import ConfigOption, fail, settings_from_cli
from aetherius.config import parse_duration
from aetherius.store import migrate
from aetherius.store.engine import (
    InvalidCursor,
    NotFound,
    StoreError,
    StoreUnavailable,
    create_engine,
    describe,
    resolve_url,
)
from aetherius.store.records import ROLES, IncidentFilters, Role
from aetherius.store.store import Store, ping

T = TypeVar("T")

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="postgresql://… or sqlite:///path (default: settings, then SQLite)."),
]
OutputOption = Annotated[str, typer.Option("--output", "-o", help="text or json")]

db_app = typer.Typer(help="Database schema: upgrade and inspect migrations.", no_args_is_help=True)
incidents_app = typer.Typer(help="Incidents in the store.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (viewer, operator, admin).", no_args_is_help=True)


def _url(config: list[Path] | None, database_url: str | None) -> str:
    if database_url is not None:
        return database_url
    settings = settings_from_cli(config=config, role="cli", configure_logs=False)
    return settings.database.url


def _run(action: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(action())
    except (NotFound, InvalidCursor) as exc:
        raise fail(str(exc)) from None
    except StoreUnavailable as exc:
        raise fail(str(exc), code=1) from None
    except StoreError as exc:
        raise fail(str(exc), code=1 if "aetherius db upgrade" in str(exc) else 2) from None


def _with_store(url: str, action: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
    async def run() -> T:
        store = await Store.open(url)
        try:
            return await action(store)
        finally:
            await store.close()

    return _run(run)


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _dump(value: object) -> None:
    typer.echo(json.dumps(value, default=_json_default, indent=2, sort_keys=True))


def _output(output: str) -> Literal["text", "json"]:
    if output not in ("text", "json"):
        raise fail(f"--output must be text or json, got {output!r}")
    return "json" if output == "json" else "text"


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, database_url: DatabaseUrlOption = None) -> None:
    """Bring the database schema up to this version of Aetherius."""
    url = _url(config, database_url)

    async def run() -> str:
        resolved = resolve_url(url)
        engine = create_engine(resolved)
        try:
            await ping(engine, resolved)
            before = await migrate.current_revision(engine)
            await migrate.upgrade(engine)
            after = await migrate.current_revision(engine)
        finally:
            await engine.dispose()
        if before == after:
            return f"{describe(resolved)}: schema already at {after}"
        return f"{describe(resolved)}: schema upgraded from {before or 'empty'} to {after}"

    typer.echo(_run(run))


@db_app.command("current")
def db_current(config: ConfigOption = None, database_url: DatabaseUrlOption = None) -> None:
    """Print the schema revision of the database and the one this Aetherius needs."""
    url = _url(config, database_url)

    async def run() -> str:
        resolved = resolve_url(url)
        engine = create_engine(resolved)
        try:
            await ping(engine, resolved)
            current = await migrate.current_revision(engine)
        finally:
            await engine.dispose()
        head = migrate.head_revision()
        state = "up to date" if current == head else "needs `aetherius db upgrade`"
        return f"{describe(resolved)}: revision {current or 'none (empty)'}, head {head}: {state}"

    typer.echo(_run(run))


@db_app.command("prune")
def db_prune(
    config: ConfigOption = None,
    database_url: DatabaseUrlOption = None,
    older_than: Annotated[str | None, typer.Option(help="e.g. 30d (default: database.retention).")] = None,
) -> None:
    """Delete signals and audit rows older than the retention, in batches."""
    settings = settings_from_cli(config=config, role="cli", configure_logs=False)
    try:
        age = parse_duration(older_than) if older_than is not None else settings.database.retention
    except ValueError as exc:
        raise fail(f"--older-than: {exc}") from None
    url = database_url if database_url is not None else settings.database.url
    result = _with_store(url, lambda s: s.prune(older_than=age))
    typer.echo(
        f"pruned {result.signals} signals, {result.audit} audit rows, {result.cooldowns} expired marks"
    )


@incidents_app.command("list")
def incidents_list(
    config: ConfigOption = None,
    database_url: DatabaseUrlOption = None,
    cluster: Annotated[str | None, typer.Option(help="Only this cluster id.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Only this namespace.")] = None,
    severity: Annotated[str | None, typer.Option(help="info, warning or critical.")] = None,
    state: Annotated[str | None, typer.Option(help="open, acknowledged or resolved.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page.")] = None,
    output: OutputOption = "text",
) -> None:
    """List incidents, most recently active first."""
    fmt = _output(output)
    if state not in (None, "open", "acknowledged", "resolved"):
        raise fail(f"--state must be open, acknowledged or resolved, got {state!r}")
    filters = IncidentFilters(
        cluster_id=cluster,
        namespace=namespace,
        severity=severity,
        state=state,  # type: ignore[arg-type]
    )
    page = _with_store(
        _url(config, database_url), lambda s: s.list_incidents(filters, cursor=cursor, limit=limit)
    )
    if fmt == "json":
        _dump({"items": [asdict(i) for i in page.items], "next_cursor": page.next_cursor})
        return
    if not page.items:
        typer.echo("no incidents")
        return
    for item in page.items:
        target = f"{item.owner_kind or item.object_kind}/{item.owner_name or item.object_name}"
        typer.echo(
            f"#{item.id:<6} {item.state:<12} {item.severity:<8} {item.cluster_id}/{item.namespace or '-'} "
            f"{target} {item.reason} {item.root_cause or '?'}  last {item.last_seen:%Y-%m-%d %H:%M:%S}"
        )
    if page.next_cursor:
        typer.echo(f"more: --cursor {page.next_cursor}")


@incidents_app.command("show")
def incidents_show(
    incident_id: Annotated[int, typer.Argument(help="Incident number.")],
    config: ConfigOption = None,
    database_url: DatabaseUrlOption = None,
    output: OutputOption = "text",
) -> None:
    """Show an incident with its latest report."""
    fmt = _output(output)

    async def load(store: Store) -> dict[str, Any]:
        incident = await store.get_incident(incident_id)
        report = await store.latest_report(incident_id)
        return {"incident": asdict(incident), "report": asdict(report) if report else None}

    data = _with_store(_url(config, database_url), load)
    if fmt == "json":
        _dump(data)
        return
    report = data["report"]
    if report and report["markdown"]:
        typer.echo(report["markdown"])
        return
    incident = data["incident"]
    typer.echo(
        f"Incident #{incident['id']} ({incident['state']}, {incident['severity']}): {incident['reason']}"
    )
    typer.echo(
        f"  {incident['cluster_id']}/{incident['namespace']} {incident['object_kind']}/{incident['object_name']}"
    )
    typer.echo(f"  {incident['summary'] or 'no report yet'}")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")],
    name: Annotated[str, typer.Option(help="Who or what uses it, e.g. ci-pipeline.")],
    config: ConfigOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create an API token and print it once (only its hash is stored)."""
    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
    chosen: Role = role
    created = _with_store(_url(config, database_url), lambda s: s.create_token(name=name, role=chosen))
    typer.echo(created.secret)
    typer.echo(
        f"token {created.token.id} ({created.token.role}, {created.token.name}): store it now, it is not shown again",
        err=True,
    )


@token_app.command("list")
def token_list(
    config: ConfigOption = None, database_url: DatabaseUrlOption = None, output: OutputOption = "text"
) -> None:
    """List API tokens (never their secrets)."""
    fmt = _output(output)
    tokens = _with_store(_url(config, database_url), lambda s: s.list_tokens())
    if fmt == "json":
        _dump([asdict(t) for t in tokens])
        return
    for token in tokens:
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        status = "revoked" if token.revoked_at else "active"
        typer.echo(f"{token.id:<5} {token.role:<9} {status:<8} {token.prefix}…  used {used}  {token.name}")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="Token id from `aetherius token list`.")],
    config: ConfigOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Revoke a token: refused by every running API within a few seconds (they remember a verified token for 5 s)."""
    token = _with_store(_url(config, database_url), lambda s: s.revoke_token(token_id))
    typer.echo(f"token {token.id} ({token.name}) revoked")


def register(app: typer.Typer) -> None:
    """Add this room's subcommands to the aetherius command."""
    app.add_typer(db_app, name="db")
    app.add_typer(incidents_app, name="incidents")
    app.add_typer(token_app, name="token")
