"""``aetherius cluster add|remove`` as an operator runs them, ending at a real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from aetherius.fleet.identity import parse_credential
from tests.fleet.clients import connect_edge
from tests.hub import PATIENCE, Hub


def run(*args: str, auth: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "aetherius", "cluster", *args, "--auth-dir", str(auth)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )


def test_add_prints_the_secret_and_the_install_command(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    result = run("add", "prod-eu-1", "--central-endpoint", "tls://nats.example.com:4222", auth=auth)
    assert result.returncode == 0, result.stderr
    secret = yaml.safe_load(result.stdout)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "edge-agent-token"
    assert secret["metadata"]["namespace"] == "aetherius-system"
    credential = parse_credential(secret["stringData"]["token"])
    assert credential.cluster == "prod-eu-1"
    assert credential.public_key in (auth / "users.conf").read_text()
    assert credential.seed not in result.stderr, "the seed goes into the Secret only"
    for expected in (
        "--set mode=edge",
        "edge.centralEndpoint=tls://nats.example.com:4222",
        "cluster.id=prod-eu-1",
    ):
        assert expected in result.stderr
    assert "deploy/manifests/edge-agent" in result.stderr
    for path in auth.rglob("*"):
        assert credential.seed not in path.read_text() if path.is_file() else True, path


def test_add_again_changes_nothing_and_remove_of_an_unknown_cluster_says_so(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    assert run("add", "a", auth=auth).returncode == 0
    users = (auth / "users.conf").read_text()
    again = run("add", "a", auth=auth)
    assert again.returncode == 0 and again.stdout == ""
    assert "already registered; nothing changed" in again.stderr
    assert (auth / "users.conf").read_text() == users
    unknown = run("remove", "zz", auth=auth)
    assert unknown.returncode == 0 and "not registered; nothing changed" in unknown.stderr
    listed = run("list", auth=auth)
    assert listed.stdout.split("\t")[0] == "a"


def test_a_bad_name_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for command in ("add", "remove"):
        result = run(command, "Prod_EU", auth=tmp_path / "auth")
        assert result.returncode == 2, result
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and "DNS-1123" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "auth").exists()


def test_remove_with_the_pid_file_reloads_the_server_and_disconnects_the_cluster(tmp_path: Path) -> None:
    central = Hub(tmp_path)
    added = run("add", "a", auth=central.registry.auth_dir)
    credential = parse_credential(yaml.safe_load(added.stdout)["stringData"]["token"])
    central.start()
    try:

        async def scenario() -> None:
            edge = await connect_edge(central.url, credential)
            try:
                removed = await asyncio.to_thread(
                    run,
                    "remove",
                    "a",
                    "--nats-pid-file",
                    str(central.pid_file),
                    auth=central.registry.auth_dir,
                )
                assert removed.returncode == 0, removed.stderr
                assert "told to reload" in removed.stderr
                await asyncio.wait_for(edge.closed.wait(), timeout=PATIENCE)
            finally:
                await edge.nc.close()

        asyncio.run(scenario())
    finally:
        central.stop()


def test_a_missing_pid_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run("add", "a", "--nats-pid-file", str(tmp_path / "none.pid"), auth=tmp_path / "auth")
    assert (
        result.returncode == 1 and "cannot read a pid" in result.stderr and "Traceback" not in result.stderr
    )


def test_a_damaged_or_renamed_record_is_one_line_and_exit_1(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    assert run("add", "a", auth=auth).returncode == 0
    record = auth / "clusters" / "a.json"
    # Renamed by hand: b's file would hand a's key b's subjects.
    record.rename(auth / "clusters" / "b.json")
    for args in (("list",), ("add", "c")):
        result = run(*args, auth=auth)
        assert result.returncode == 1, result
        assert "does not match its file name" in result.stderr and "Traceback" not in result.stderr
    (auth / "clusters" / "b.json").write_text("{not json")
    result = run("list", auth=auth)
    assert result.returncode == 1 and "not a cluster record" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # remove reads no record: it is how a damaged one is cleared.
    assert run("remove", "b", auth=auth).returncode == 0
    assert run("list", auth=auth).stdout == ""


def test_add_into_a_damaged_directory_writes_nothing(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    assert run("add", "a", auth=auth).returncode == 0
    (auth / "clusters" / "a.json").write_text("{not json")
    result = run("add", "c", auth=auth)
    assert result.returncode == 1 and result.stdout == ""
    assert not (auth / "clusters" / "c.json").exists(), "no record whose token was never printed"


def test_add_a_leaf_member_prints_its_leaf_server_config_and_central_sources_it(tmp_path: Path) -> None:
    central = Hub(tmp_path / "hub")
    auth = central.registry.auth_dir
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump({"message_bus": {"url": central.url}}), encoding="utf-8")
    central.start()
    try:
        added = run(
            "add", "edge1", "--leaf-domain", "edge-edge1", "--central-leaf-endpoint", central.leaf_url,
            "--nats-pid-file", str(central.pid_file), "--config", str(config), auth=auth,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert "now source 1 leaf member(s)" in added.stderr
        secret = yaml.safe_load(added.stdout)["stringData"]
        credential = parse_credential(secret["token"])
        leaf_conf = json.loads(secret["leaf.conf"])
        assert leaf_conf["jetstream"]["domain"] == "edge-edge1"
        assert leaf_conf["authorization"]["users"] == [{"nkey": credential.public_key}]
        users = (auth / "users.conf").read_text()
        assert "leaf-edge1" in users and credential.public_key not in users, "a leaf user, not the nkey"
        for path in auth.rglob("*"):
            text = path.read_text() if path.is_file() else ""
            assert credential.seed not in text and credential.leaf_password not in text, path
        server_conf = tmp_path / "leaf.conf"
        leaf_conf["jetstream"]["store_dir"] = str(tmp_path / "leaf-store")
        server_conf.write_text(json.dumps(leaf_conf), encoding="utf-8")
        checked = subprocess.run(
            [central.binary, "-t", "-c", str(server_conf)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stderr
        assert asyncio.run(_source_filters(central)) == ["aetherius.signals.edge1.>"]

        for bad in (
            ["--leaf-domain", "edge.2"],
            ["--leaf-domain", "edge-2", "--central-leaf-endpoint", "host:7422"],
        ):
            invalid = run("add", "edge2", *bad, "--config", str(config), auth=auth)
            assert invalid.returncode == 2 and bad[-2] in invalid.stderr and invalid.stdout == ""
            assert not (auth / "clusters" / "edge2.json").exists()

        removed = run(
            "remove", "edge1", "--nats-pid-file", str(central.pid_file), "--config", str(config), auth=auth
        )
        assert removed.returncode == 0, removed.stderr
        assert asyncio.run(_source_filters(central)) == []
    finally:
        central.stop()


async def _source_filters(central: Hub) -> list[str]:
    nc = await central.connect_central()
    try:
        info = await nc.jetstream().stream_info(central.bus.stream)
        return [str(source.filter_subject) for source in info.config.sources or []]
    finally:
        await nc.close()
