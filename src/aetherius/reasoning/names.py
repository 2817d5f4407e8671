"""Kubernetes-shaped names found in free text, before any tool has returned their object.

Why from the text as well as from the objects read: a log line or an event names a pod, a Service
or a namespace long before (or without) a tool returning that object, and whatever is not known to
the pseudonymizer when a text is sent leaves as is. The objects the investigation reads first
(``Toolbox.prime``: the namespace's workload and Service names and the cluster's namespaces, read
once through the gateway, bounded and audited) cover the names of the incident's own namespace;
the shapes below cover the rest without guessing at ordinary words:

* a DNS name ending in ``.svc`` or ``.svc.cluster.local``: ``<svc>.<ns>.svc`` (and
  ``<pod-host>.<svc>.<ns>.svc`` for a StatefulSet's pods) names a Service and a namespace, whether
  or not the namespace was known;
* ``<name>.<namespace>`` (a host, optionally followed by a port or path) whose second label is a
  namespace already known;
* ``<owner>-<ordinal>`` and ``<owner>-<hash>[-<hash>]``: a pod of a known StatefulSet, Deployment,
  ReplicaSet, DaemonSet or Job, by the names the controllers give their pods.

What no shape reveals (a bare name of an object in a namespace the investigation did not read,
with no DNS suffix and no known owner) is not recognized; docs/reasoning.md says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator

__all__ = ["HOST", "Found", "host_labels", "in_text"]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# A dotted name bounded by characters that cannot continue it (a port, a path, a quote may follow).
HOST = re.compile(
    r"(?<![A-Za-z0-9_.\-])(" + _LABEL + r"(?:\." + _LABEL + r")+)(?![A-Za-z0-9_\-]|\.[A-Za-z0-9])"
)
# The alphabet of controllers' generated suffixes (no vowels): "db-backup" is not a pod of "db".
_HASH = "[bcdfghjklmnpqrstvwxz2456789]"
_SUFFIXES = (("svc", "cluster", "local"), ("svc",))
Found = tuple[str, str]  # (kind, name) for Pseudonymizer.add


def host_labels(host: str, *, namespaces: Collection[str]) -> list[tuple[str, str]] | None:
    """The labels of a Kubernetes-shaped host that are names, with their kinds (None: not one).

    ``payments.shop.svc.cluster.local`` → service payments, namespace shop; ``db-0.db.data.svc`` →
    pod db-0, service db, namespace data; ``payments.shop`` → the same when ``shop`` is known.
    """
    labels = host.split(".")
    for suffix in _SUFFIXES:
        n = len(suffix)
        if len(labels) > n and tuple(labels[-n:]) == suffix:
            names = labels[:-n]
            break
    else:
        names = labels if len(labels) == 2 and labels[1] in namespaces else []
    if not 2 <= len(names) <= 3:
        return None
    kinds = ["service", "namespace"] if len(names) == 2 else ["pod", "service", "namespace"]
    return list(zip(kinds, names, strict=True))


def _owner_pods(owners: Collection[str]) -> re.Pattern[str] | None:
    if not owners:
        return None
    alternatives = "|".join(re.escape(o) for o in sorted(owners, key=len, reverse=True))
    return re.compile(
        r"(?<![A-Za-z0-9_.\-/:])((?:"
        + alternatives
        + r")-(?:\d{1,5}|"
        + _HASH
        + r"{5,10}(?:-"
        + _HASH
        + r"{5})?))"
        r"(?![A-Za-z0-9_\-]|\.[A-Za-z0-9])"
    )


def in_text(
    text: str, *, namespaces: Collection[str], owners: Collection[str], known: Callable[[str], bool]
) -> Iterator[Found]:
    """The names ``text`` reveals by their shape and that ``known`` does not know yet."""
    for match in HOST.finditer(text):
        for kind, name in host_labels(match.group(1), namespaces=namespaces) or ():
            if not known(name):
                yield kind, name
    pods = _owner_pods(owners)
    if pods is not None:
        for match in pods.finditer(text):
            if not known(match.group(1)):
                yield "pod", match.group(1)
