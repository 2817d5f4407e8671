"""The store's commands, run as a user runs them: ``python -m aetherius …`` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from aetherius.store import Store
from tests.services import free_port
from tests.store.databases import fresh_database
from tests.store.helpers import make_signal, unique, upsert_for


def aetherius(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aetherius", *args], capture_output=True, text=True, check=False, timeout=120
    )


async def _seed(url: str) -> int:
    store = await Store.open(url)
    try:
        signal = make_signal(cluster=unique("c"), pod="api-1")
        change = await store.upsert_incident(
            upsert_for(signal, fingerprint=unique("fp"), summary="api is killed at 256Mi"), signal=signal
        )
        assert change.incident is not None
        await store.add_report(change.incident.id, document={"x": 1}, markdown="# OOMKilled on api\n")
        return change.incident.id
    finally:
        await store.close()


def test_db_incidents_and_tokens_from_the_command_line(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        current = aetherius("db", "current", "--database-url", url)
        assert current.returncode == 0, current.stderr
        assert "revision none (empty)" in current.stdout and "needs `aetherius db upgrade`" in current.stdout
        listed = aetherius("incidents", "list", "--database-url", url)
        assert listed.returncode == 1 and "aetherius db upgrade" in listed.stderr

        upgraded = aetherius("db", "upgrade", "--database-url", url)
        assert upgraded.returncode == 0, upgraded.stderr
        assert "schema upgraded from empty to" in upgraded.stdout
        assert "already at" in aetherius("db", "upgrade", "--database-url", url).stdout

        incident_id = asyncio.run(_seed(url))
        listed = aetherius("incidents", "list", "--database-url", url, "--output", "json")
        assert listed.returncode == 0, listed.stderr
        items = json.loads(listed.stdout)["items"]
        assert [i["id"] for i in items] == [incident_id]
        text = aetherius("incidents", "list", "--database-url", url)
        assert f"#{incident_id}" in text.stdout and "OOMKilled" in text.stdout
        shown = aetherius("incidents", "show", str(incident_id), "--database-url", url)
        assert shown.stdout.startswith("# OOMKilled on api")
        as_json = json.loads(
            aetherius("incidents", "show", str(incident_id), "--database-url", url, "-o", "json").stdout
        )
        assert (
            as_json["incident"]["summary"] == "api is killed at 256Mi" and as_json["report"]["version"] == 1
        )
        missing = aetherius("incidents", "show", "999999", "--database-url", url)
        assert missing.returncode == 2 and missing.stderr.strip() == "incident 999999 does not exist"

        created = aetherius("token", "create", "--role", "operator", "--name", "ci", "--database-url", url)
        assert created.returncode == 0, created.stderr
        secret = created.stdout.strip()
        assert secret.startswith("aeth_") and "not shown again" in created.stderr
        tokens = json.loads(aetherius("token", "list", "--database-url", url, "-o", "json").stdout)
        assert [t["name"] for t in tokens] == ["ci"] and secret not in json.dumps(tokens)
        revoked = aetherius("token", "revoke", str(tokens[0]["id"]), "--database-url", url)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        assert "revoked" in aetherius("token", "list", "--database-url", url).stdout
        pruned = aetherius("db", "prune", "--database-url", url, "--older-than", "30d")
        assert pruned.returncode == 0 and pruned.stdout.startswith("pruned 0 signals"), pruned.stderr
        bad_age = aetherius("db", "prune", "--database-url", url, "--older-than", "soon")
        assert bad_age.returncode == 2 and "--older-than" in bad_age.stderr
        bad_role = aetherius("token", "create", "--role", "root", "--name", "x", "--database-url", url)
        assert bad_role.returncode == 2 and "--role must be one of" in bad_role.stderr


def test_unreachable_database_is_one_line_and_exit_1() -> None:
    port = free_port()
    result = aetherius("db", "upgrade", "--database-url", f"postgresql://postgres@127.0.0.1:{port}/x")
    assert result.returncode == 1
    assert result.stderr.strip() == f"cannot reach PostgreSQL at 127.0.0.1:{port}/x: connection refused"
    assert "Traceback" not in result.stderr


def test_default_url_comes_from_the_environment(tmp_path: Path) -> None:
    env_url = f"sqlite:///{tmp_path / 'env.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "aetherius", "db", "upgrade"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "AETHERIUS_DATABASE_URL": env_url},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "env.db").is_file()
