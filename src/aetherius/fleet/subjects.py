"""Which NATS subjects belong to a member cluster: the one map both sides and the server share.

A cluster's edge agent publishes its Signals, writes its own watcher state (cursors, dedup
window, heartbeat) in the KV bucket, reads that state back by direct get of its own keys only,
and answers gateway queries sent to its own query subjects. Central holds everything else.
``permissions`` turns this map into the server-enforced subject permissions of the cluster's NATS
user, so what the agent may do and what it does can never drift apart.

NB: a cluster name is a DNS-1123 label (what ``aetherius cluster add`` accepts): it is one subject
token and one KV key token as is, with no escaping that two names could collide in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aetherius.config import MessageBusSettings

_CLUSTER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
GATEWAY_PREFIX = "aetherius.gateway"
HEALTH_KEY_PREFIX = "health"  # aetherius.watch.health.HEALTH_PREFIX


class InvalidClusterName(ValueError):
    """A cluster name that cannot be a member cluster's identity."""


def check_cluster_name(name: str) -> str:
    """``name`` when it is a valid member-cluster name; ``InvalidClusterName`` says why not."""
    if not name or len(name) > 63 or not _CLUSTER_NAME.fullmatch(name):
        raise InvalidClusterName(
            f"cluster name {name!r} must be a DNS-1123 label: 1-63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class ClusterSubjects:
    """Every subject and KV key prefix of one member cluster."""

    cluster: str
    signal_prefix: str  # message_bus.subject_prefix
    bucket: str  # message_bus.kv_bucket

    @classmethod
    def of(cls, cluster: str, bus: MessageBusSettings) -> ClusterSubjects:
        return cls(
            cluster=check_cluster_name(cluster), signal_prefix=bus.subject_prefix, bucket=bus.kv_bucket
        )

    @property
    def signals(self) -> str:
        """Where the cluster's Signals go: ``<prefix>.<cluster>.<source>``."""
        return f"{self.signal_prefix}.{self.cluster}.>"

    @property
    def kv_state(self) -> str:
        """The watcher's cursors and dedup window: KV keys ``<cluster>.…``."""
        return f"$KV.{self.bucket}.{self.cluster}.>"

    @property
    def kv_health(self) -> str:
        """The heartbeat: KV key ``health.<cluster>``."""
        return f"$KV.{self.bucket}.{HEALTH_KEY_PREFIX}.{self.cluster}"

    @property
    def kv_direct_get(self) -> str:
        """Direct get of its own state keys only (the key rides in the request subject)."""
        return f"$JS.API.DIRECT.GET.KV_{self.bucket}.$KV.{self.bucket}.{self.cluster}.>"

    def gateway(self, operation: str = ">") -> str:
        """Gateway queries for this cluster: ``aetherius.gateway.<cluster>.<operation>``."""
        return f"{GATEWAY_PREFIX}.{self.cluster}.{operation}"

    @property
    def inbox_prefix(self) -> str:
        """The agent's reply inbox prefix (nats-py ``inbox_prefix``): its own, not ``_INBOX``."""
        return f"_INBOX_{self.cluster}"

    def permissions(self) -> dict[str, Any]:
        """The NATS user permissions of this cluster's edge agent (server-enforced).

        No ``$JS.API.>``: the agent never creates or deletes streams, consumers or buckets, and
        never reads another cluster's keys; central provisions all of them.
        ``allow_responses`` lets it answer the gateway queries it received, and nothing else.
        """
        return {
            "publish": {"allow": [self.signals, self.kv_state, self.kv_health, self.kv_direct_get]},
            "subscribe": {"allow": [self.gateway(), f"{self.inbox_prefix}.>"]},
            "allow_responses": {"max": 1, "expires": "1m"},
        }
