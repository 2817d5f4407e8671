"""PersistentVolumeClaim analyzer: claims that do not bind, and why (the StorageClass that does not
exist, with the ones that do; no default class; the provisioner failing or absent)."""

from __future__ import annotations

from typing import Any

from aetherius.diagnosis.context import PENDING_CLAIM_GRACE_S, Context
from aetherius.diagnosis.index import meta, pod_claims, pod_name
from aetherius.diagnosis.model import Finding

Obj = dict[str, Any]
_DEFAULT = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")


def _default_class(ctx: Context) -> str | None:
    for (_, name), sc in ctx.index.of_kind("StorageClass").items():
        annotations = (sc.get("metadata") or {}).get("annotations") or {}
        if any(annotations.get(key) == "true" for key in _DEFAULT):
            return name
    return None


def _consumers(ctx: Context, namespace: str, claim: str) -> list[str]:
    out = []
    for pod in ctx.index.pods_by_ns.get(namespace, []):
        out += [pod_name(pod)[1] for name in pod_claims(pod) if name == claim]
    return out


def pvc(obj: Obj, ctx: Context) -> list[Finding]:
    metadata, spec = meta(obj), ctx.part(obj, "spec", kind="PersistentVolumeClaim")
    namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Lost":
        return [
            ctx.finding(
                kind="PersistentVolumeClaim",
                namespace=namespace,
                name=name,
                reason="PVCPending",
                root_cause="MissingReference",
                severity="critical",
                summary=f"PersistentVolumeClaim {name} lost its volume {spec.get('volumeName')}.",
                evidence=["status.phase=Lost", f"spec.volumeName={spec.get('volumeName')}"],
                recommendations=[
                    f"The PersistentVolume {spec.get('volumeName')} is gone: restore it from backup or recreate the claim."
                ],
            )
        ]
    if phase != "Pending":
        return []
    age = ctx.age(metadata.get("creationTimestamp"))
    if age is not None and age < PENDING_CLAIM_GRACE_S:
        return []
    events = ctx.index.events("PersistentVolumeClaim", namespace, name, str(metadata.get("uid") or ""))
    failed = [ev for ev in events if ev.reason == "ProvisioningFailed"]
    waiting = [ev for ev in events if ev.reason == "ExternalProvisioning"]
    classes = sorted(n for _, n in ctx.index.of_kind("StorageClass"))
    sc_name = spec.get("storageClassName")
    evidence = [
        "status.phase=Pending",
        f"spec.storageClassName={sc_name!r}" if "storageClassName" in spec else "spec.storageClassName unset",
    ]
    consumers = _consumers(ctx, namespace, name)
    sc = ctx.index.get("StorageClass", "", sc_name) if isinstance(sc_name, str) and sc_name else None
    if (
        sc is not None
        and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        and not consumers
        and not failed
    ):
        return []  # binds when a pod uses it: waiting is the design
    recs: list[str]
    if isinstance(sc_name, str) and sc_name and ctx.index.has("StorageClass") and sc is None:
        evidence.append(f"StorageClasses that exist: {', '.join(classes) or 'none'}")
        recs = [
            f"StorageClass {sc_name} does not exist: use one of {', '.join(classes) or '(none: install a provisioner)'} in PersistentVolumeClaim {name}, or create {sc_name}."
        ]
        summary = f"PersistentVolumeClaim {name} is Pending: StorageClass {sc_name} does not exist."
    elif (
        "storageClassName" not in spec
        and ctx.index.has("StorageClass")
        and _default_class(ctx) is None
        and not spec.get("volumeName")
    ):
        evidence.append(f"no default StorageClass (classes: {', '.join(classes) or 'none'})")
        recs = [
            f"Set storageClassName to one of {', '.join(classes) or '(none exist)'} or mark one default (annotation storageclass.kubernetes.io/is-default-class=true)."
        ]
        summary = (
            f"PersistentVolumeClaim {name} is Pending: it names no StorageClass and there is no default one."
        )
    elif failed:
        evidence += [ev.line() for ev in failed[:2]]
        recs = [
            f"The provisioner refuses the claim: fix what its message names (size, zone, parameters of StorageClass {sc_name})."
        ]
        summary = f"PersistentVolumeClaim {name} is Pending: provisioning failed."
    elif waiting:
        evidence += [ev.line() for ev in waiting[:1]]
        provisioner = (sc or {}).get("provisioner", "?")
        recs = [
            f"Nothing provisions the volume: check that the {provisioner} CSI controller runs in the cluster."
        ]
        summary = f"PersistentVolumeClaim {name} is Pending: waiting for provisioner {provisioner}."
    else:
        if age is not None and age < PENDING_CLAIM_GRACE_S * 5:
            return []
        if isinstance(sc_name, str) and sc_name and not ctx.index.has("StorageClass"):
            evidence.append(
                f"StorageClass {sc_name} not checked (the state holds no StorageClasses): "
                f"kubectl get storageclass {sc_name}"
            )
        recs = [f"kubectl describe pvc -n {namespace} {name}: no event explains why it does not bind."]
        pending = f"{int(age // 60)}m" if age is not None else "an unknown time (no creationTimestamp)"
        summary = f"PersistentVolumeClaim {name} has been Pending for {pending}."
        return [
            ctx.finding(
                kind="PersistentVolumeClaim",
                namespace=namespace,
                name=name,
                reason="PVCPending",
                root_cause="Unknown",
                severity="warning",
                summary=summary,
                evidence=evidence,
                recommendations=recs,
            )
        ]
    if consumers:
        evidence.append(f"used by pod(s): {', '.join(consumers[:3])}")
    return [
        ctx.finding(
            kind="PersistentVolumeClaim",
            namespace=namespace,
            name=name,
            reason="PVCPending",
            root_cause="VolumeProvisioningFailure",
            severity="critical" if consumers else "warning",
            summary=summary,
            evidence=evidence,
            recommendations=recs,
        )
    ]


CHECKS = {"PersistentVolumeClaim": pvc}
