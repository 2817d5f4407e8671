"""Every container we ship runs locked down: the Pod Security "restricted" profile and more."""

from __future__ import annotations

import copy
from collections.abc import Callable

from tests.deploy.rendering import Doc, pod_specs


def posture_problems(docs: list[Doc]) -> list[str]:
    problems: list[str] = []
    for workload, pod in pod_specs(docs):
        pod_ctx = pod.get("securityContext", {})
        if pod_ctx.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{workload}: pod seccompProfile is not RuntimeDefault")
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            problems.append(f"{workload}: uses host namespaces")
        for volume in pod.get("volumes", []):
            if "hostPath" in volume or "secret" in volume:
                problems.append(f"{workload}: volume {volume['name']} is hostPath/secret")
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{workload}/{container['name']}"
            ctx = {**pod_ctx, **container.get("securityContext", {})}
            if ctx.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if ctx.get("runAsUser", 0) == 0:
                problems.append(f"{where}: runs as uid 0 or unset")
            caps = container.get("securityContext", {}).get("capabilities", {})
            if caps.get("drop") != ["ALL"] or caps.get("add"):
                problems.append(f"{where}: capabilities are not drop ALL")
            if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if container.get("securityContext", {}).get("privileged"):
                problems.append(f"{where}: privileged")
            if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                    problems.append(f"{where}: {kind} lack cpu or memory")
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in container:
                    problems.append(f"{where}: no {probe}")
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            if "/tmp" not in mounts:
                problems.append(f"{where}: no writable /tmp mounted over the read-only root")
    return problems


def test_every_container_is_locked_down(sources: dict[str, list[Doc]]) -> None:
    for source, docs in sources.items():
        assert pod_specs(docs), f"{source}: no workload rendered"
        assert not posture_problems(docs), (source, posture_problems(docs))


def test_the_posture_check_catches_each_weakening(kustomized: list[Doc]) -> None:
    weakenings: dict[str, Callable[[Doc, Doc], object]] = {
        "runAsNonRoot": lambda c, p: (
            c["securityContext"].pop("runAsNonRoot"),
            p["securityContext"].pop("runAsNonRoot"),
        ),
        "capabilities": lambda c, p: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
        "allowPrivilegeEscalation": lambda c, p: c["securityContext"].update(allowPrivilegeEscalation=True),
        "root filesystem": lambda c, p: c["securityContext"].update(readOnlyRootFilesystem=False),
        "limits": lambda c, p: c["resources"].pop("limits"),
        "livenessProbe": lambda c, p: c.pop("livenessProbe"),
        "readinessProbe": lambda c, p: c.pop("readinessProbe"),
        "seccompProfile": lambda c, p: p["securityContext"].pop("seccompProfile"),
    }
    for needle, weaken in weakenings.items():
        docs = copy.deepcopy(kustomized)
        pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
        weaken(pod["containers"][0], pod)
        assert any(needle in problem for problem in posture_problems(docs)), needle


def test_the_namespace_enforces_the_restricted_profile(sources: dict[str, list[Doc]]) -> None:
    namespace = next(d for d in sources["kustomize"] if d["kind"] == "Namespace")
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
