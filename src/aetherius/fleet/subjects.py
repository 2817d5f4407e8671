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
LEAF_DELIVER_PREFIX = "aetherius.leaf"
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
    def gateway_inbox(self) -> str:
        """Where central's gateway queries for this cluster get their answers: a prefix of the
        cluster's own, the one inbox its leaf connection may publish into."""
        return f"_INBOX_gateway.{self.cluster}"

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

    @property
    def leaf_deliver(self) -> str:
        """Where central's source consumer in the cluster's leaf domain delivers: its own prefix,
        so that the leaf may send into this cluster's source and no other (``$JS.S.>`` is everyone's)."""
        return f"{LEAF_DELIVER_PREFIX}.{self.cluster}.deliver"

    def leaf_permissions(self, domain: str) -> dict[str, Any]:
        """The permissions of the cluster's leaf connection to central (server-enforced).

        On a leaf connection "publish" is what the leaf may send into central and "subscribe"
        what central may send into the leaf. No Signal subject and no KV key: central takes the
        cluster's Signals and heartbeat only through its sources of the leaf's stream and bucket
        (a Signal arriving both ways would be a duplicate, and nats-server 2.9 takes a duplicate
        message id in a source for an error: it retries the source, seconds for each one). In: the sources' deliveries, replies (the sources'
        consumer-create ``$JSC.R.>``, gateway answers to the cluster's own ``gateway_inbox``: a
        leaf connection has no ``allow_responses``, and central's shared ``_INBOX`` must stay
        out of reach). Out: the cluster's gateway queries, its domain's JetStream API, the
        sources' flow control.
        """
        return {
            "publish": {"allow": [f"{self.leaf_deliver}.>", "$JSC.R.>", f"{self.gateway_inbox}.>"]},
            "subscribe": {"allow": [self.gateway(), f"$JS.{domain}.API.>", "$JS.FC.>"]},
        }
