"""What leaves for a model: scrubbed, and with stable pseudonyms for the names that identify a site.

Why pseudonyms and not masks: the model must still tell two pods apart and follow one pod from its
events to its logs, so the same name always maps to the same token (keyed HMAC, one key per
installation: the tokens mean nothing outside it). They are replaced everywhere, in object fields,
events and logs alike, and mapped back in the answer a person reads.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Any

from aetherius.scrub import scrub_text

__all__ = ["Pseudonymizer", "load_key"]

_KINDS = {"namespace": "ns", "pod": "pod", "node": "node", "image": "img", "host": "host", "name": "obj"}
_TOKEN = re.compile(r"\b(?:ns|pod|node|img|host|obj)-[0-9a-f]{8}\b")


def load_key(path: Path | None, *, data_dir: Path) -> bytes:
    """The installation's key: the given file, or one generated once and kept (mode 0600)."""
    target = path or data_dir / "reasoning-pseudonym.key"
    if target.exists():
        return target.read_bytes().strip()
    target.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


class Pseudonymizer:
    """Name ↔ token for one investigation; ``outbound`` on everything sent, ``inbound`` on answers."""

    def __init__(self, key: bytes, *, enabled: bool = True) -> None:
        self._key = key
        self.enabled = enabled
        self._forward: dict[str, str] = {}
        self._back: dict[str, str] = {}

    def add(self, kind: str, name: str) -> str:
        """Register a name (idempotent); its token is stable across investigations."""
        if not name or not self.enabled:
            return name
        if name in self._forward:
            return self._forward[name]
        digest = hmac.new(self._key, f"{kind}:{name}".encode(), hashlib.sha256).hexdigest()[:8]
        token = f"{_KINDS.get(kind, 'obj')}-{digest}"
        self._forward[name] = token
        self._back[token] = name
        return token

    def learn(self, obj: Any) -> None:
        """Register the identifying names an object carries before it is sent."""
        if not isinstance(obj, dict):
            return
        meta = obj.get("metadata") or {}
        kind = str(obj.get("kind") or "").lower()
        if meta.get("namespace"):
            self.add("namespace", str(meta["namespace"]))
        if meta.get("name"):
            self.add(
                "namespace" if kind == "namespace" else kind if kind in ("pod", "node") else "name",
                str(meta["name"]),
            )
        spec = obj.get("spec") or {}
        if isinstance(spec, dict):
            if spec.get("nodeName"):
                self.add("node", str(spec["nodeName"]))
            for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                if isinstance(container, dict) and container.get("image"):
                    self.add("image", str(container["image"]))
        involved = obj.get("involvedObject") or {}
        if isinstance(involved, dict) and involved.get("name"):
            self.add(str(involved.get("kind") or "name").lower(), str(involved["name"]))
            if involved.get("namespace"):
                self.add("namespace", str(involved["namespace"]))
        status = obj.get("status") or {}
        if isinstance(status, dict):
            for key in ("hostIP", "podIP"):
                if status.get(key):
                    self.add("host", str(status[key]))
            for cs in status.get("containerStatuses") or []:
                if isinstance(cs, dict) and cs.get("image"):
                    self.add("image", str(cs["image"]))

    def outbound(self, text: str) -> str:
        """Scrub, then replace every known name (longest first, so a pod name wins over its prefix)."""
        text = scrub_text(text)
        if not self.enabled or not self._forward:
            return text
        for name in sorted(self._forward, key=len, reverse=True):
            text = _replace(text, name, self._forward[name])
        return text

    def inbound(self, text: str) -> str:
        """Tokens in a model's answer back to the names a person knows."""
        return _TOKEN.sub(lambda m: self._back.get(m.group(0), m.group(0)), text)

    def restore(self, names: dict[str, str]) -> None:
        """Take up a previous investigation's names (a follow-up question)."""
        for name, token in names.items():
            self._forward[name] = token
            self._back[token] = name

    def names(self) -> dict[str, str]:
        return dict(self._forward)


def _replace(text: str, name: str, token: str) -> str:
    # Bounded by characters that cannot be part of a Kubernetes name, so "web" does not bite "web-1".
    pattern = re.compile(r"(?<![A-Za-z0-9_.\-/:])" + re.escape(name) + r"(?![A-Za-z0-9_\-]|\.[A-Za-z0-9])")
    return pattern.sub(token, text)
