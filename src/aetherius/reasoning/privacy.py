"""What leaves for a model: scrubbed, and with stable pseudonyms for the names that identify a site.

Why pseudonyms and not masks: the model must still tell two pods apart and follow one pod from its
events to its logs, so the same name always maps to the same token (keyed HMAC, one key per
installation: the tokens mean nothing outside it). They are replaced everywhere, in object fields,
events and logs alike, and mapped back in the answer a person reads.

Which names: those of the objects read (``learn``), the cluster id, and those a text reveals by
its Kubernetes shape before any object introduces them (``names.in_text``: DNS names of Services,
pods of known owners). Inside a DNS name each label is replaced on its own, so
``payments.shop.svc:5432`` leaves as ``svc-….ns-….svc:5432`` with the same tokens as elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Any

from aetherius.reasoning import names as k8s_names
from aetherius.scrub import scrub_text

__all__ = ["Pseudonymizer", "load_key"]

_KINDS = {
    "namespace": "ns",
    "pod": "pod",
    "node": "node",
    "image": "img",
    "host": "host",
    "service": "svc",
    "cluster": "cl",
    "workload": "wl",
    "name": "obj",
}
_TOKEN = re.compile(r"\b(?:ns|pod|node|img|host|svc|cl|wl|obj)-[0-9a-f]{8}\b")
# Kinds whose pods are named after them (``db`` → ``db-0``, ``web`` → ``web-7d4b9c-x2x9z``).
_OWNERS = {"deployment", "statefulset", "replicaset", "daemonset", "job", "cronjob"}
_RS_HASH = re.compile(r"-[a-z0-9]{6,10}$")


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
        self._owners: set[str] = set()
        self._pattern: tuple[int, re.Pattern[str]] | None = None  # (names it covers, pattern)

    def add(self, kind: str, name: str) -> str:
        """Register a name (idempotent); its token is stable across investigations."""
        if not name or not self.enabled:
            return name
        if kind in _OWNERS:
            self._owners.add(name)
            kind = "workload"
        elif kind not in _KINDS:
            kind = "name"
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
            self.add(kind, str(meta["name"]))
        for ref in meta.get("ownerReferences") or []:
            if isinstance(ref, dict) and ref.get("name"):
                self._owner(str(ref.get("kind") or "").lower(), str(ref["name"]))
        if kind in _OWNERS:
            self._owner(kind, str(meta.get("name") or ""))
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

    def _owner(self, kind: str, name: str) -> None:
        if not name or kind not in _OWNERS:
            return
        self.add(kind, name)
        if kind == "replicaset":  # a Deployment's ReplicaSet: <deployment>-<pod-template-hash>
            deployment = _RS_HASH.sub("", name)
            if deployment != name:
                self._owner("deployment", deployment)

    def namespaces(self) -> set[str]:
        return {name for name, token in self._forward.items() if token.startswith("ns-")}

    def discover(self, text: str) -> None:
        """Register the names ``text`` reveals by their shape (see ``names.in_text``)."""
        found = k8s_names.in_text(
            text, namespaces=self.namespaces(), owners=self._owners, known=self._forward.__contains__
        )
        for kind, name in list(found):
            self.add(kind, name)

    def outbound(self, text: str) -> str:
        """Scrub, learn the names the text reveals, then replace every known name (longest first,
        so a pod name wins over its prefix) and each name label of Kubernetes DNS names."""
        text = scrub_text(text)
        if not self.enabled:
            return text
        self.discover(text)
        if not self._forward:
            return text
        text = self._names_pattern().sub(lambda m: self._forward[m.group(0)], text)
        namespaces = self.namespaces()
        return k8s_names.HOST.sub(lambda m: self._host(m.group(1), namespaces), text)

    def _names_pattern(self) -> re.Pattern[str]:
        """One pattern for every known name (names are only ever added: their count is its age).

        Why one: thousands of names read up front, one pass over each text instead of one each."""
        if self._pattern is None or self._pattern[0] != len(self._forward):
            self._pattern = (len(self._forward), _alternation(list(self._forward)))
        return self._pattern[1]

    def _host(self, host: str, namespaces: set[str]) -> str:
        labels = k8s_names.host_labels(host, namespaces=namespaces)
        if labels is None:
            return host
        parts = host.split(".")
        for i, (_kind, name) in enumerate(labels):
            parts[i] = self._forward.get(name, name)
        return ".".join(parts)

    def inbound(self, text: str) -> str:
        """Tokens in a model's answer back to the names a person knows."""
        return _TOKEN.sub(lambda m: self._back.get(m.group(0), m.group(0)), text)

    def restore(self, names: dict[str, str]) -> None:
        """Take up a previous investigation's names (a follow-up question)."""
        for name, token in names.items():
            self._forward[name] = token
            self._back[token] = name
            if token.startswith("wl-"):
                self._owners.add(name)

    def names(self) -> dict[str, str]:
        return dict(self._forward)


def _alternation(names: list[str]) -> re.Pattern[str]:
    # Bounded by characters that cannot be part of a Kubernetes name, so "web" does not bite "web-1";
    # longest first, so a pod name wins over its prefix.
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(r"(?<![A-Za-z0-9_.\-/:])(?:" + alternatives + r")(?![A-Za-z0-9_\-]|\.[A-Za-z0-9])")
