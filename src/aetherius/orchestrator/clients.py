"""Cluster clients of one process: today's single cluster, or several read from outside them.

Out-of-cluster mode (``clusters:`` in app.yaml, or ``--kubeconfig``/``--context`` repeated)
opens one ``KubeClient`` per entry and names each cluster before anything runs: its entry's
``name``, else the usual detection (``aetherius.kube.cluster_id``). Two entries that come out
as the same id are refused at start, since their Signals, cursors and incidents would mix
under one name without anyone noticing.

Every client's credentials are also asked what they could change (``check_write_access``):
Aetherius only reads, and a kubeconfig that can write deserves one clear warning line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aetherius.config import ClusterSettings, KubeSettings, Settings
from aetherius.kube import KubeApiError, KubeClient, KubeConnectionError
from aetherius.kube.cluster_id import ClusterIdError, detect_cluster_id
from aetherius.kube.credentials import CredentialsError
from aetherius.kube.permissions import write_access
from aetherius.logs import get_logger

log = get_logger(__name__)

Announce = Callable[[str], None]


class StartError(Exception):
    """A role cannot start (store, bus or cluster unreachable); the message is for a person."""


@dataclass
class ClusterClient:
    """One cluster of out-of-cluster mode: its id, how the id was found, and its client."""

    cluster_id: str
    detected_by: str
    kube: KubeClient
    label: str  # the entry as the user wrote it, for messages


def kube_label(settings: KubeSettings) -> str:
    """Where a single-cluster client's credentials come from, for messages."""
    if settings.in_cluster:
        return "the in-cluster ServiceAccount"
    where = str(settings.kubeconfig) if settings.kubeconfig is not None else "the default kubeconfig"
    return f"{where} (context {settings.context})" if settings.context else where


async def open_kube(settings: KubeSettings) -> KubeClient:
    try:
        return await KubeClient.from_settings(settings)
    except (CredentialsError, OSError, ValueError) as exc:
        where = "the in-cluster ServiceAccount" if settings.in_cluster else "the kubeconfig"
        raise StartError(f"cannot load cluster credentials from {where}: {exc}") from None


def entry_settings(kube: KubeSettings, entry: ClusterSettings) -> KubeSettings:
    """The shared ``kube`` settings (rate limits, timeouts) with one entry's credentials."""
    return kube.model_copy(
        update={
            "kubeconfig": entry.kubeconfig or kube.kubeconfig,
            "context": entry.context,
            "in_cluster": False,
        }
    )


async def _open_entry(settings: Settings, index: int, entry: ClusterSettings) -> ClusterClient:
    label = f"clusters.{index} ({entry.label()})"
    try:
        kube = await open_kube(entry_settings(settings.kube, entry))
    except StartError as exc:
        raise StartError(f"{label}: {exc}") from None
    try:
        cluster_id, method = await detect_cluster_id(kube, configured=entry.name)
    except ClusterIdError as exc:
        await kube.close()
        # NB: CLUSTER_ID names one cluster; here each entry's own name is the way to set it.
        reason = str(exc).replace("(set CLUSTER_ID)", "(give the entry a name)")
        raise StartError(f"{label}: cannot name the cluster: {reason}") from None
    return ClusterClient(cluster_id=cluster_id, detected_by=method, kube=kube, label=label)


async def open_cluster_clients(settings: Settings) -> list[ClusterClient]:
    """One named client per ``settings.clusters`` entry; ``StartError`` on any failure or clash."""
    opened: list[ClusterClient] = []
    try:
        for index, entry in enumerate(settings.clusters):
            client = await _open_entry(settings, index, entry)
            clash = next((c for c in opened if c.cluster_id == client.cluster_id), None)
            opened.append(client)
            if clash is not None:
                raise StartError(
                    f"{clash.label} and {client.label} are both cluster {client.cluster_id!r} "
                    f"(id from {client.detected_by}): the same cluster twice? Otherwise give "
                    "each entry its own name"
                )
            log.info(
                "cluster opened",
                cluster_id=client.cluster_id,
                cluster_id_method=client.detected_by,
                entry=client.label,
            )
    except BaseException:
        for client in opened:
            await client.kube.close()
        raise
    return opened


async def check_write_access(kube: KubeClient, *, label: str, announce: Announce | None = None) -> bool:
    """Warn (one log line, and ``announce``) when ``kube``'s credentials can write; True if so.

    A check that cannot be made (an old server, a review refused) is a debug line, not a
    warning: it says nothing about the credentials.
    """
    try:
        found = await write_access(kube)
    except (KubeApiError, KubeConnectionError) as exc:
        log.debug("write access not checked", cluster=label, error=str(exc))
        return False
    if not found:
        return False
    text = "; ".join(access.describe() for access in found)
    incomplete = " (the server's rule list is incomplete)" if any(a.incomplete for a in found) else ""
    log.warning(
        "these credentials can change the cluster; Aetherius only reads, a read-only user is enough",
        cluster=label,
        write_access=text + incomplete,
    )
    if announce is not None:
        announce(
            f"Warning: {label} can change the cluster ({text}){incomplete}. Aetherius only reads: "
            "give it a read-only user (docs/multi-cluster.md, Out-of-cluster mode)."
        )
    return True
