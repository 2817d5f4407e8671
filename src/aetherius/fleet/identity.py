"""Credentials of the fleet: one nkey per member cluster, one for central.

An edge agent's token is ``<cluster-name>.<nkey user seed>``: one Secret value carries both who the
agent is (which decides its subjects, ``subjects.ClusterSubjects``) and the key that proves it. A
seed is base32 and starts with ``SU``, so it holds no dot, and a cluster name is a DNS-1123 label,
which holds none either: the first dot splits the two without ambiguity. The server holds only
the public half of each key (``users.conf``); a leaked users file lets nobody connect.

Nothing here ever puts a seed into an error message, a ``repr`` or a log line.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nkeys

from aetherius.config import MessageBusSettings
from aetherius.fleet.subjects import ClusterSubjects, InvalidClusterName, check_cluster_name

CENTRAL_SEED_FILE = "central.nk"
_LEAF_PASSWORD_CONTEXT = b"aetherius leaf connection v1"
_SEED_BYTES = 2 + 32 + 2  # prefix bytes, the ed25519 seed, CRC-16


class InvalidToken(ValueError):
    """An edge token that cannot be a credential; the message never holds the secret part."""


def new_user_seed() -> str:
    """A fresh nkey user seed (``SU…``), from the operating system's random source."""
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)).decode("ascii")


def _check_seed(seed: str) -> None:
    """Refuse a seed that is not exactly a well-formed user seed, checksum included.

    NB: ``nkeys.from_seed`` checks neither the checksum nor the length: a seed with a typo, or
    one cut short in a copy-paste, would become another key (refused by the server, but only at
    connect time, as a bare "Authorization Violation"). Said here, it says what is wrong.
    """
    if not seed.startswith("SU"):
        raise InvalidToken("the key part is not an nkey user seed (it must start with 'SU')")
    try:
        raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
    except (binascii.Error, ValueError):
        raise InvalidToken("the key part is not a valid nkey user seed (not base32)") from None
    if len(raw) != _SEED_BYTES:
        raise InvalidToken("the key part is not a valid nkey user seed (wrong length)")
    if bytes(nkeys.crc16_checksum(raw[:-2])) != raw[-2:]:
        raise InvalidToken("the key part is not a valid nkey user seed (checksum mismatch: a typo?)")


def public_key_of(seed: str) -> str:
    """The user public key (``U…``) the server holds for ``seed``; ``InvalidToken`` if it is none."""
    _check_seed(seed)
    try:
        pair = nkeys.from_seed(bytearray(seed.encode("ascii")))
        return bytes(pair.public_key).decode("ascii")
    except Exception:  # nkeys raises its own errors, and nacl's
        # NB: ``from None`` and no ``str(exc)``: a decoding error may quote the input.
        raise InvalidToken("the key part is not a valid nkey user seed") from None


@dataclass(frozen=True)
class EdgeCredential:
    """A member cluster's identity and key, as parsed from its token."""

    cluster: str
    seed: str = field(repr=False)

    @property
    def token(self) -> str:
        """What goes into the ``edge-agent-token`` Secret (key ``token``)."""
        return f"{self.cluster}.{self.seed}"

    @property
    def public_key(self) -> str:
        return public_key_of(self.seed)

    @property
    def leaf_user(self) -> str:
        """The user name of the cluster's leaf connection to central (leaf mode)."""
        return leaf_user(self.cluster)

    @property
    def leaf_password(self) -> str:
        """The password of that connection, derived from the seed (see ``leaf_password``)."""
        return leaf_password(self.seed)

    def connect_options(self, bus: MessageBusSettings) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` that make the agent this cluster's user.

        The inbox prefix matters as much as the key: the agent may subscribe only to its own
        ``_INBOX_<cluster>.>``, so a client on the default ``_INBOX`` would never hear a reply.
        """
        return {
            "nkeys_seed_str": self.seed,
            "inbox_prefix": ClusterSubjects.of(self.cluster, bus).inbox_prefix,
            "name": f"aetherius-edge-{self.cluster}",
        }


def leaf_user(cluster: str) -> str:
    return f"leaf-{check_cluster_name(cluster)}"


def leaf_password(seed: str) -> str:
    """The leaf connection's password: an HMAC of the cluster's seed, so one token carries both.

    NB: nats-server 2.9 authenticates a leaf connection by a JWT credentials file or by a user
    and password, not by a bare nkey; central keeps only the bcrypt hash of this password, as it
    keeps only the public half of the key.
    """
    _check_seed(seed)
    digest = hmac.new(seed.encode("ascii"), _LEAF_PASSWORD_CONTEXT, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=")


def new_credential(cluster: str) -> EdgeCredential:
    """A fresh credential for ``cluster`` (``InvalidClusterName`` for a bad name)."""
    return EdgeCredential(cluster=check_cluster_name(cluster), seed=new_user_seed())


def parse_token(token: str) -> tuple[str, str]:
    """``(cluster, seed)`` of an edge token ``<cluster-name>.<nkey user seed>``.

    Raises ``InvalidToken`` with a message that names what is wrong and never quotes the seed
    (it may name the cluster part: that is not a secret, and it is what a person needs to see).
    """
    text = token.strip()
    if not text:
        raise InvalidToken("the edge token is empty (Secret edge-agent-token, key token)")
    cluster, dot, seed = text.partition(".")
    if not dot or not seed:
        raise InvalidToken("the edge token must be <cluster-name>.<nkey seed>; it has no '.'")
    try:
        check_cluster_name(cluster)
    except InvalidClusterName as exc:
        raise InvalidToken(f"the edge token's cluster part is not valid: {exc}") from None
    try:
        public_key_of(seed)
    except InvalidToken as exc:
        raise InvalidToken(str(exc).replace("the key part", "the edge token's key part", 1)) from None
    return cluster, seed


def parse_credential(token: str) -> EdgeCredential:
    """``parse_token`` as an ``EdgeCredential``."""
    cluster, seed = parse_token(token)
    return EdgeCredential(cluster=cluster, seed=seed)


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only, from the first byte (no chmod after the fact)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text + "\n")


def central_seed(auth_dir: Path, *, create: bool = False) -> str:
    """The central user's seed, kept in ``<auth_dir>/central.nk`` (mode 0600).

    ``create`` makes one on first use (``aetherius cluster add`` does); a reader that finds none
    gets ``FileNotFoundError``, never a new key the server does not know.
    """
    path = auth_dir / CENTRAL_SEED_FILE
    if create and not path.exists():
        auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # NB: another `cluster add` may make it at the same moment: then theirs is used.
        with contextlib.suppress(FileExistsError):
            _write_private(path, new_user_seed())
    seed = path.read_text(encoding="ascii").strip()
    public_key_of(seed)
    return seed
