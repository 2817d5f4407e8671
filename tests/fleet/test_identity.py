"""Tokens, keys and the users file, without a server."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import bcrypt
import pytest

from aetherius.config import MessageBusSettings
from aetherius.fleet.identity import (
    InvalidToken,
    central_seed,
    new_credential,
    parse_credential,
    parse_token,
    public_key_of,
)
from aetherius.fleet.registry import Registry, RegistryError, write_server_config
from aetherius.fleet.subjects import ClusterSubjects, InvalidClusterName


def test_a_token_round_trips_and_carries_identity_and_key() -> None:
    credential = new_credential("prod-eu-1")
    assert credential.seed.startswith("SU") and "." not in credential.seed
    assert parse_token(credential.token) == ("prod-eu-1", credential.seed)
    assert parse_token(f"  {credential.token}\n") == ("prod-eu-1", credential.seed), "a Secret's newline"
    assert public_key_of(credential.seed).startswith("U")
    assert credential.seed not in repr(credential) and credential.seed not in repr(
        parse_credential(credential.token)
    )


@pytest.mark.parametrize(
    ("token", "needle"),
    [
        ("", "empty"),
        ("prod-eu-1", "no '.'"),
        ("prod-eu-1.", "no '.'"),
        ("Prod_EU.SUAAAA", "cluster part"),
        ("-a.SUAAAA", "cluster part"),
        (
            "a.SAAGTKEKQFXS4OZDXLAKKMFQYQC34TPLBS3OCBBGHGO6NA6J5V2UBZUE3U",
            "must start with 'SU'",
        ),  # an account seed
        ("a.SUNOTBASE32!!!", "not base32"),
        ("a.SU" + "A" * 56, "checksum"),
        ("a.SUAAAAAA", "wrong length"),
    ],
)
def test_a_malformed_token_is_one_clear_error_without_the_secret(token: str, needle: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        parse_token(token)
    message = str(caught.value)
    assert needle in message
    secret = token.partition(".")[2]
    assert not secret or secret not in message
    assert caught.value.__cause__ is None


def test_a_seed_with_a_typo_is_refused_not_turned_into_another_key() -> None:
    seed = new_credential("a").seed
    typo = seed[:10] + ("B" if seed[10] != "B" else "C") + seed[11:]
    with pytest.raises(InvalidToken):
        parse_token(f"a.{typo}")


def test_a_bad_cluster_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "auth")
    with pytest.raises(InvalidClusterName):
        registry.add("Not_A_Label")
    assert not (tmp_path / "auth").exists()


def test_the_users_file_holds_public_keys_and_exactly_the_cluster_permissions(tmp_path: Path) -> None:
    bus = MessageBusSettings(subject_prefix="sig", kv_bucket="state")
    registry = Registry(tmp_path / "auth", bus=bus)
    a = registry.add("a")
    b = registry.add("b")
    assert a is not None and b is not None
    text = registry.users_file.read_text()
    for secret in (a.seed, b.seed, central_seed(registry.auth_dir)):
        assert secret not in text
    users = json.loads(text.split("users = ", 1)[1])
    central, *clusters = users
    assert central == {"nkey": public_key_of(central_seed(registry.auth_dir))}
    assert clusters == [
        {"nkey": a.public_key, "permissions": ClusterSubjects.of("a", bus).permissions()},
        {"nkey": b.public_key, "permissions": ClusterSubjects.of("b", bus).permissions()},
    ]
    # Nothing broader than the cluster's own subjects, whatever subjects.py says today.
    for user in clusters:
        permissions = user["permissions"]
        assert set(permissions) == {"publish", "subscribe", "allow_responses"}
        assert set(permissions["publish"]) == {"allow"} and set(permissions["subscribe"]) == {"allow"}
        assert permissions["allow_responses"]["max"] == 1
        for subject in permissions["publish"]["allow"] + permissions["subscribe"]["allow"]:
            assert subject not in (">", "$JS.API.>", "_INBOX.>") and ".*" not in subject, subject


def test_files_are_private_and_rewritten_atomically(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "auth")
    registry.add("a")
    auth = registry.auth_dir
    assert stat.S_IMODE(auth.stat().st_mode) == 0o700
    for path in (auth / "central.nk", auth / "users.conf", auth / "clusters" / "a.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    before = (auth / "users.conf").stat().st_ino
    registry.add("b")
    assert (auth / "users.conf").stat().st_ino != before, "replaced by rename, not rewritten in place"
    assert sorted(p.name for p in auth.iterdir()) == ["central.nk", "clusters", "users.conf"], "no temp left"
    record = json.loads((auth / "clusters" / "a.json").read_text())
    assert set(record) == {"cluster", "public_key", "created_at"}


def test_add_is_idempotent_and_rotate_replaces_the_key(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "auth")
    first = registry.add("a")
    assert first is not None
    text = registry.users_file.read_text()
    assert registry.add("a") is None
    assert registry.users_file.read_text() == text
    rotated = registry.add("a", rotate=True)
    assert rotated is not None and rotated.public_key != first.public_key
    assert first.public_key not in registry.users_file.read_text()
    assert registry.remove("a") and not registry.remove("a")
    assert rotated.public_key not in registry.users_file.read_text()


def test_central_keeps_one_key(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    with pytest.raises(FileNotFoundError):
        central_seed(auth)  # a reader never makes a key the server does not know
    seed = central_seed(auth, create=True)
    assert central_seed(auth, create=True) == seed == central_seed(auth)
    assert stat.S_IMODE((auth / "central.nk").stat().st_mode) == 0o600


def test_the_generated_server_config_is_valid_for_nats_server(tmp_path: Path) -> None:
    binary = shutil.which("nats-server")
    assert binary is not None, "nats-server is required"
    registry = Registry(tmp_path / "auth")
    registry.add("a")
    config = write_server_config(
        tmp_path / "conf" / "server.conf" if (tmp_path / "conf").mkdir() is None else tmp_path,
        port=4999,
        store_dir=tmp_path / "js",
        users_file=registry.users_file,
    )
    result = subprocess.run([binary, "-c", str(config), "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr + result.stdout


def test_a_leaf_member_has_a_leaf_user_with_its_own_subjects_and_a_hashed_password(tmp_path: Path) -> None:
    bus = MessageBusSettings(subject_prefix="sig", kv_bucket="state")
    registry = Registry(tmp_path / "auth", bus=bus)
    a = registry.add("a", leaf_domain="edge-a")
    assert a is not None
    text = registry.users_file.read_text()
    assert a.seed not in text and a.leaf_password not in text and a.public_key not in text
    _, user = json.loads(text.split("users = ", 1)[1])
    assert user["user"] == "leaf-a" and bcrypt.checkpw(a.leaf_password.encode(), user["password"].encode())
    assert user["allowed_connection_types"] == ["LEAFNODE"]
    assert user["permissions"] == ClusterSubjects.of("a", bus).leaf_permissions("edge-a")
    allowed = user["permissions"]["publish"]["allow"] + user["permissions"]["subscribe"]["allow"]
    for subject in allowed:
        assert subject not in (">", "$JS.API.>", "_INBOX.>") and not subject.startswith("sig."), subject
        assert ".a." in subject or subject.startswith(("$JSC.R.", "$JS.FC.", "$JS.edge-a.")), subject
    assert registry.get("a") == registry.leaf_members()[0]


@pytest.mark.parametrize("domain", ["edge.a", "edge-*", "edge a", "x" * 64])
def test_a_bad_or_taken_leaf_domain_is_refused_before_anything_is_written(
    tmp_path: Path, domain: str
) -> None:
    registry = Registry(tmp_path / "auth")
    assert registry.add("a", leaf_domain="edge-a") is not None
    users = registry.users_file.read_text()
    with pytest.raises(RegistryError, match="leaf domain"):
        registry.add("b", leaf_domain=domain)
    with pytest.raises(RegistryError, match="another cluster's"):
        registry.add("b", leaf_domain="edge-a")
    assert registry.get("b") is None and registry.users_file.read_text() == users
