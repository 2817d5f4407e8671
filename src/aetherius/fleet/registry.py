"""The central's record of member clusters, and the NATS users file made from it.

The auth directory holds what central must keep, and nothing an attacker could use to connect:

- ``clusters/<name>.json``: one small record per member cluster, its public key and when it was
  made (the seed was printed once, into the member cluster's Secret, and is kept nowhere here);
  a leaf member (``cluster add --leaf-domain``) adds its leaf server's JetStream domain and the
  bcrypt hash of its leaf connection's password;
- ``central.nk``: the central user's own seed (0600), made on first use;
- ``users.conf``: the ``users = [...]`` list that the central nats-server ``include``s inside its
  ``authorization {}`` block. It is regenerated from the records every time, never edited in
  place, and replaced atomically (a reload never reads half a file).

The list is written in JSON syntax, which the NATS configuration parser accepts as is: no quoting
rules of our own, and the permissions are exactly ``ClusterSubjects.permissions()``.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bcrypt

from aetherius.config import LEAF_DOMAIN, MessageBusSettings
from aetherius.fleet.identity import (
    EdgeCredential,
    central_seed,
    leaf_user,
    new_credential,
    public_key_of,
)
from aetherius.fleet.subjects import ClusterSubjects, check_cluster_name

USERS_FILE = "users.conf"
_RECORDS = "clusters"


def default_auth_dir(env: dict[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/aetherius/fleet`` (``~/.local/share/aetherius/fleet``)."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".local/share")
    return Path(base) / "aetherius" / "fleet"


class RegistryError(RuntimeError):
    """The auth directory holds something that is not what ``aetherius cluster`` wrote."""


@dataclass(frozen=True)
class ClusterRecord:
    """What central keeps about a member cluster: who it is and the public half of its key."""

    cluster: str
    public_key: str
    created_at: str  # ISO 8601, UTC
    leaf_domain: str = ""  # leaf mode: the JetStream domain of the member's leaf server
    leaf_password_hash: str = ""  # leaf mode: bcrypt hash of its leaf connection's password

    def to_json(self) -> str:
        data = {"cluster": self.cluster, "public_key": self.public_key, "created_at": self.created_at}
        if self.leaf_domain:
            data.update(leaf_domain=self.leaf_domain, leaf_password_hash=self.leaf_password_hash)
        return json.dumps(data, indent=2, sort_keys=True)


def _atomic_write(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Registry:
    """Member clusters registered with this central, kept in ``auth_dir``."""

    def __init__(self, auth_dir: Path, *, bus: MessageBusSettings | None = None) -> None:
        self.auth_dir = auth_dir
        self.bus = bus or MessageBusSettings()

    @property
    def users_file(self) -> Path:
        return self.auth_dir / USERS_FILE

    def _record_path(self, cluster: str) -> Path:
        return self.auth_dir / _RECORDS / f"{check_cluster_name(cluster)}.json"

    def _prepare(self) -> None:
        self.auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.auth_dir / _RECORDS).mkdir(parents=True, exist_ok=True, mode=0o700)
        central_seed(self.auth_dir, create=True)

    def get(self, cluster: str) -> ClusterRecord | None:
        path = self._record_path(cluster)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = ClusterRecord(
                cluster=str(data["cluster"]),
                public_key=str(data["public_key"]),
                created_at=str(data["created_at"]),
                leaf_domain=str(data.get("leaf_domain", "")),
                leaf_password_hash=str(data.get("leaf_password_hash", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{path}: not a cluster record ({type(exc).__name__}: {exc})") from None
        # NB: a record renamed by hand would give one cluster's key another cluster's subjects.
        if record.cluster != cluster or not record.public_key.startswith("U"):
            raise RegistryError(f"{path}: the record does not match its file name or holds no user key")
        if record.leaf_domain and (
            not LEAF_DOMAIN.fullmatch(record.leaf_domain) or not record.leaf_password_hash.startswith("$2")
        ):
            raise RegistryError(f"{path}: the record's leaf domain or password hash is not valid")
        return record

    def records(self) -> list[ClusterRecord]:
        """Every registered cluster, by name."""
        folder = self.auth_dir / _RECORDS
        if not folder.is_dir():
            return []
        found = [self.get(path.stem) for path in sorted(folder.glob("*.json"))]
        return [record for record in found if record is not None]

    def add(self, cluster: str, *, rotate: bool = False, leaf_domain: str = "") -> EdgeCredential | None:
        """Register ``cluster`` and return its new credential, or ``None`` when it already is one.

        ``rotate`` replaces the key of a registered cluster: the old token stops working once
        the server has reloaded the users file. ``leaf_domain`` makes it a leaf member (its
        Signals reach central by the source of its leaf server's stream in that domain); a
        registered cluster changes mode only with a new credential (``rotate``), since the leaf
        password derives from the seed, which central does not keep.
        """
        if leaf_domain and not LEAF_DOMAIN.fullmatch(leaf_domain):
            raise RegistryError(f"leaf domain {leaf_domain[:80]!r}: 1-63 letters, digits, '-' and '_'")
        credential = new_credential(cluster)
        self._prepare()
        # NB: every record is checked before anything is written: a damaged directory must not
        # end up with a new record whose token was never printed.
        others = [record for record in self.records() if record.cluster != credential.cluster]
        if self.get(cluster) is not None and not rotate:
            return None
        if leaf_domain and any(record.leaf_domain == leaf_domain for record in others):
            raise RegistryError(f"leaf domain {leaf_domain!r} is another cluster's already")
        password_hash = ""
        if leaf_domain:
            # NB: bcrypt is slow on purpose; a low cost keeps `cluster add` and each leaf connect quick.
            password_hash = bcrypt.hashpw(credential.leaf_password.encode(), bcrypt.gensalt(10)).decode()
        record = ClusterRecord(
            cluster=credential.cluster,
            public_key=credential.public_key,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            leaf_domain=leaf_domain,
            leaf_password_hash=password_hash,
        )
        _atomic_write(self._record_path(cluster), record.to_json() + "\n")
        self.write_users_file()
        return credential

    def remove(self, cluster: str) -> bool:
        """Forget ``cluster`` (its key is refused after the reload); ``False`` if it was unknown."""
        path = self._record_path(cluster)
        if not path.exists():
            return False
        self._prepare()
        path.unlink()
        # The others are checked only now: removing is how a damaged record is cleared.
        self.write_users_file()
        return True

    def leaf_members(self) -> list[ClusterRecord]:
        """The clusters whose Signals central takes from their leaf servers (by name)."""
        return [record for record in self.records() if record.leaf_domain]

    def users(self) -> list[dict[str, Any]]:
        """The ``users`` list: central (everything) first, then each cluster with its own subjects.

        A leaf member has its leaf connection's user instead of its nkey user: its agent talks to
        its own leaf server only, and nothing of it reaches central but through that connection.
        """
        users: list[dict[str, Any]] = [{"nkey": public_key_of(central_seed(self.auth_dir))}]
        for record in self.records():
            subjects = ClusterSubjects.of(record.cluster, self.bus)
            if record.leaf_domain:
                users.append(
                    {
                        "user": leaf_user(record.cluster),
                        "password": record.leaf_password_hash,
                        "permissions": subjects.leaf_permissions(record.leaf_domain),
                        "allowed_connection_types": ["LEAFNODE"],
                    }
                )
            else:
                users.append({"nkey": record.public_key, "permissions": subjects.permissions()})
        return users

    def render_users(self) -> str:
        """``users.conf`` text: a NATS config fragment in JSON syntax."""
        body = json.dumps(self.users(), indent=2)
        return (
            "# Written by `aetherius cluster add/remove`: do not edit, it is regenerated.\n"
            "# Included inside the central nats-server's authorization {} block.\n"
            f"users = {body}\n"
        )

    def write_users_file(self) -> Path:
        """(Re)write ``users.conf`` atomically and return its path."""
        self._prepare()
        _atomic_write(self.users_file, self.render_users())
        return self.users_file


def write_server_config(
    path: Path,
    *,
    port: int,
    store_dir: Path,
    users_file: Path,
    host: str = "127.0.0.1",
    pid_file: Path | None = None,
    leafnode_port: int | None = None,
) -> Path:
    """A complete central nats-server configuration (for tests and development).

    JetStream on, and every client authenticated by the users file ``aetherius cluster add``
    writes. NB: nats-server resolves an ``include`` against the including file's directory, even
    an absolute path (it joins the two), so the path written is relative.
    """
    include = os.path.relpath(users_file.resolve(), path.resolve().parent)
    lines = [
        f"listen: {json.dumps(f'{host}:{port}')}",
        f"jetstream {{ store_dir: {json.dumps(str(store_dir))} }}",
        f"authorization {{ include {json.dumps(include)} }}",
    ]
    if pid_file is not None:
        lines.append(f"pid_file: {json.dumps(str(pid_file))}")
    if leafnode_port is not None:
        # Leaf members' servers connect here, authenticated by the same users file.
        lines.append(f"leafnodes {{ listen: {json.dumps(f'{host}:{leafnode_port}')} }}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class ReloadFailed(RuntimeError):
    """The central nats-server could not be told to reload."""


def reload_server(pid_file: Path) -> int:
    """Tell the nats-server whose pid is in ``pid_file`` to reload its configuration (SIGHUP).

    SIGHUP is nats-server's reload signal (what ``nats-server --signal reload=<pid>`` sends).
    Returns the pid.
    """
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        raise ReloadFailed(f"cannot read a pid from {pid_file}: {exc}") from None
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise ReloadFailed(f"cannot signal nats-server (pid {pid}): {exc.strerror}") from None
    return pid
