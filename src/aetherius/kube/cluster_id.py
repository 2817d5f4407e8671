"""Which cluster is this? Detected once at start, in a fixed order.

1. ``CLUSTER_ID`` (environment, or ``cluster_id`` in the settings: the same setting);
2. the ``cluster_id`` key of the ``aetherius-config`` ConfigMap in our namespace
   (``aetherius-system`` outside a pod);
3. ``cluster-<first 8 characters of the kube-system namespace's UID>`` (stable for the life of
   the cluster, present on every cluster: in practice this is where detection ends);
4. a node's cluster-name label (EKS, GKE, AKS), for API servers that hide kube-system.

Every step that fails says why at debug level; the one that wins is logged at info.
"""

from __future__ import annotations

from aetherius.kube.client import KubeApiError, KubeClient, KubeConnectionError
from aetherius.kube.credentials import pod_namespace
from aetherius.logs import get_logger

log = get_logger(__name__)

CONFIGMAP_NAME = "aetherius-config"
NODE_LABELS = (
    ("eks", "alpha.eksctl.io/cluster-name"),
    ("gke", "cloud.google.com/gke-cluster-name"),
    ("aks", "kubernetes.azure.com/cluster"),
)


class ClusterIdError(Exception):
    """No method found a cluster id; the message lists what was tried."""


async def detect_cluster_id(
    client: KubeClient, *, configured: str | None = None, namespace: str | None = None
) -> tuple[str, str]:
    """``(cluster_id, method)``; raises ``ClusterIdError`` when every method failed."""
    if configured:
        log.info("cluster id from configuration", cluster_id=configured, method="env")
        return configured, "env"
    tried: list[str] = []
    ns = namespace or pod_namespace()
    try:
        cm = await client.get_json(f"/api/v1/namespaces/{ns}/configmaps/{CONFIGMAP_NAME}")
        value = str((cm.get("data") or {}).get("cluster_id") or "").strip()
        if value:
            log.info("cluster id from ConfigMap", cluster_id=value, method="configmap", namespace=ns)
            return value, "configmap"
        tried.append(f"ConfigMap {ns}/{CONFIGMAP_NAME} has no cluster_id")
    except KubeConnectionError as exc:
        # NB: no method can work without the API server; "set CLUSTER_ID" would send the user
        # after the wrong problem.
        raise ClusterIdError(f"cannot reach the API server at {client.host}: {exc}") from None
    except KubeApiError as exc:
        tried.append(f"ConfigMap {ns}/{CONFIGMAP_NAME}: {exc}")
    try:
        kube_system = await client.get_json("/api/v1/namespaces/kube-system")
        uid = str((kube_system.get("metadata") or {}).get("uid") or "")
        if uid:
            value = f"cluster-{uid[:8]}"
            log.info("cluster id from kube-system namespace UID", cluster_id=value, method="namespace_uid")
            return value, "namespace_uid"
        tried.append("namespace kube-system has no uid")
    except (KubeApiError, KubeConnectionError) as exc:
        tried.append(f"namespace kube-system: {exc}")
    try:
        nodes = await client.get_json("/api/v1/nodes", params={"limit": 1})
        items = nodes.get("items") or []
        labels = dict((items[0].get("metadata") or {}).get("labels") or {}) if items else {}
        for provider, label in NODE_LABELS:
            if labels.get(label):
                value = str(labels[label])
                log.info("cluster id from node label", cluster_id=value, method=f"node_label_{provider}")
                return value, f"node_label_{provider}"
        tried.append("no node carries a cluster-name label" if items else "no nodes")
    except (KubeApiError, KubeConnectionError) as exc:
        tried.append(f"nodes: {exc}")
    for reason in tried:
        log.debug("cluster id method failed", reason=reason)
    raise ClusterIdError("cannot detect the cluster id (set CLUSTER_ID): " + "; ".join(tried))
