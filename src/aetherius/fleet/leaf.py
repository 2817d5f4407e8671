"""The leaf mode: a member cluster's Signals kept on its own nats-server until central has them.

A leaf member runs a nats-server with a JetStream domain of its own (``fleet.leaf_domain``,
such as ``edge-<cluster>``) and a leaf connection to central's leafnode listener. Its edge agent
talks to that server only: the Signals go into the local ``AETHERIUS_SIGNALS`` stream (the agent
provisions it, with ``fleet.leaf_max_age``), and its cursors and dedup window into the local KV
bucket, so reading goes on while the link is cut, for as long as the disk holds.

Central's ``AETHERIUS_SIGNALS`` *sources* each leaf member's stream through the leaf connection
(``external.api = $JS.<domain>.API``), filtered on that cluster's subjects: the source's consumer
lives in the leaf domain and resumes where it stopped whenever the connection is back. That is
the only way a leaf member's Signals reach central: its leaf connection may not publish Signal
subjects (``ClusterSubjects.leaf_permissions``), so none arrives twice.

The heartbeat comes the same way: central's KV bucket sources the cluster's ``health.<cluster>``
key from the leaf's bucket. What crosses the connection directly, when it is up, is central's
gateway queries and their answers; while it is down, central's copy of the heartbeat goes stale
(the cluster shows unreachable) and its reads say the agent is not connected.
"""

from __future__ import annotations

import json
from urllib.parse import SplitResult, urlsplit, urlunsplit

from nats.js import api

from aetherius.bus.nats import NatsBus
from aetherius.config import MessageBusSettings
from aetherius.fleet.identity import EdgeCredential
from aetherius.fleet.registry import ClusterRecord
from aetherius.fleet.subjects import ClusterSubjects


def central_sources(
    records: list[ClusterRecord], bus: MessageBusSettings
) -> dict[str, list[api.StreamSource]]:
    """The sources of central's streams, by stream: per leaf member, its Signals into the Signal
    stream and its heartbeat key into the KV bucket's stream, from the same in its leaf domain.

    NB: the filters matter as much as the permissions: a leaf server is the member's to run, and
    whatever it holds under another cluster's name must not become that cluster's.
    """
    bucket_stream = f"KV_{bus.kv_bucket}"
    sources: dict[str, list[api.StreamSource]] = {bus.stream: [], bucket_stream: []}
    for record in records:
        if not record.leaf_domain:
            continue
        subjects = ClusterSubjects.of(record.cluster, bus)
        external = api.ExternalStream(api=f"$JS.{record.leaf_domain}.API", deliver=subjects.leaf_deliver)
        sources[bus.stream].append(
            api.StreamSource(name=bus.stream, filter_subject=subjects.signals, external=external)
        )
        sources[bucket_stream].append(
            api.StreamSource(name=bucket_stream, filter_subject=subjects.kv_health, external=external)
        )
    return sources


async def sync_sources(bus: NatsBus, records: list[ClusterRecord]) -> bool:
    """Central's stream sources made to match the registry's leaf members; ``True`` if changed."""
    await bus.key_value(bus.settings.kv_bucket)  # the bucket's stream exists before it gains sources
    changed = False
    for stream, sources in central_sources(records, bus.settings).items():
        changed = await bus.set_sources(stream, sources) or changed
    return changed


def check_leaf_url(central_leaf_url: str) -> SplitResult:
    """Central's leafnode URL taken apart; ``ValueError`` unless it is ``nats-leaf|tls://host:port``."""
    parts = urlsplit(central_leaf_url)
    if parts.scheme not in ("nats-leaf", "nats", "tls") or not parts.hostname or not parts.port:
        raise ValueError(f"{central_leaf_url[:200]!r}: want nats-leaf://host:port or tls://host:port")
    return parts


def leaf_remote_url(central_leaf_url: str, credential: EdgeCredential) -> str:
    """Central's leafnode URL (``nats-leaf://``/``tls://host:7422``) with the cluster's leaf login."""
    parts = check_leaf_url(central_leaf_url)
    # NB: both parts are base32 or a DNS label: nothing to escape in a URL.
    netloc = f"{credential.leaf_user}:{credential.leaf_password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def leaf_server_config(
    credential: EdgeCredential, *, domain: str, central_leaf_url: str, listen: str, store_dir: str
) -> str:
    """The member's leaf nats-server configuration, holding the cluster's leaf password.

    Its clients authenticate with the cluster's own nkey (the agent's token), and its JetStream
    domain is ``domain``. Written in JSON syntax, which the NATS configuration parser reads.
    """
    document = {
        "listen": listen,
        "jetstream": {"domain": domain, "store_dir": store_dir},
        "authorization": {"users": [{"nkey": credential.public_key}]},
        "leafnodes": {"remotes": [{"url": leaf_remote_url(central_leaf_url, credential)}]},
    }
    return json.dumps(document, indent=2) + "\n"
