"""Discovery documents (``/version``, ``/api``, ``/apis``, resource lists) built from the table.

kubectl asks for aggregated discovery first; answering with the legacy documents (plain
``application/json``) makes it fall back to per-group discovery, as with older servers.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from aetherius.sim.resources import GROUP_VERSIONS, RESOURCES, ResourceType

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:02:27Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# Subresources clients look for in discovery (kubectl logs checks pods/log).
_SUBRESOURCES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "pods": (("log", ("get",)), ("status", ("get", "patch", "update"))),
    "deployments.apps": (("scale", ("get", "patch", "update")), ("status", ("get", "patch", "update"))),
    "replicasets.apps": (("scale", ("get", "patch", "update")), ("status", ("get", "patch", "update"))),
    "statefulsets.apps": (("scale", ("get", "patch", "update")), ("status", ("get", "patch", "update"))),
    "nodes": (("status", ("get", "patch", "update")),),
}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{version}", "version": version} for version in GROUP_VERSIONS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(name) for name in GROUP_VERSIONS]}


def api_group(name: str) -> dict[str, Any] | None:
    if name not in GROUP_VERSIONS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def _entry(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    digest = hashlib.sha256(f"{rt.api_version}/{rt.kind}".encode()).digest()[:8]
    entry["storageVersionHash"] = base64.b64encode(digest).decode()
    return entry


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in RESOURCES if rt.group == group and rt.version == version]
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        resources.append(_entry(rt))
        for sub, verbs in _SUBRESOURCES.get(rt.qualified, ()):
            resources.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": "Scale" if sub == "scale" else rt.kind,
                    "verbs": list(verbs),
                }
            )
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }
