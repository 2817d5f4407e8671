"""Diagnosis speed against the floor of just parsing the snapshot.

Generates a cluster deterministically (default 10,000 pods of which 2,000 fail in mixed ways,
3,000 events, 500 services, 200 nodes) into a temporary JSON snapshot, then measures:

- ``parse_s``: ``orjson.loads`` of the file's bytes (the floor: nothing can be faster than reading it);
- ``diagnose_s``: the full diagnosis of that file (read, parse, redact, index, analyze, logs);
- ``live_s``: the same cluster served by the simulated API server, diagnosed over HTTP;
- ``live_cli_s``, ``live_peak_rss_mib``: ``aetherius diagnose`` run as a person runs it against
  that server, in a process of its own: wall seconds (start-up included) and its peak RSS.

``ratio = diagnose_s / parse_s`` (target ≤ 1.5; ``cpu_ratio``: the same with CPU seconds, steadier
on a shared machine). Best of ``--repeat`` runs each (default 5: on a shared host a burst of
noise slows a diagnosis, which chases pointers, more than the floor), the two alternating so
that both see the same machine load.

    python benchmarks/scan.py [--pods N] [--repeat R] [--json] [--no-live]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from aetherius.diagnosis import diagnose
from aetherius.gateway import live_gateway, snapshot_gateway
from aetherius.gateway.snapshot import paused_gc

Obj = dict[str, Any]
NOW = "2026-11-30T10:00:00Z"
_FAILURES = ("oom", "crash-logs", "image", "unschedulable", "config")


def _pod(
    i: int, *, deployment: str, rs_uid: str, namespace: str, node: str, failure: str | None
) -> tuple[Obj, list[Obj], Obj | None]:
    name = f"{deployment}-7d9f8c6b5-{i:05d}"
    uid = f"00000000-0000-4000-8000-{i:012d}"
    container: Obj = {
        "name": "app",
        "image": f"registry.example.com/{namespace}/{deployment}:1.{i % 7}.0",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        ],
        "resources": {
            "limits": {"memory": "256Mi", "cpu": "500m"},
            "requests": {"memory": "128Mi", "cpu": "100m"},
        },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 10},
        "volumeMounts": [
            {
                "name": "kube-api-access",
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "readOnly": True,
            }
        ],
    }
    status: Obj = {
        "phase": "Running",
        "hostIP": "10.0.0.1",
        "podIP": f"10.244.{i // 250}.{i % 250}",
        "qosClass": "Burstable",
        "startTime": "2026-11-30T08:00:00Z",
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-11-30T08:00:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T08:00:10Z"},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-30T08:00:10Z"},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-30T08:00:00Z"},
        ],
        "containerStatuses": [
            {
                "name": "app",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "image": container["image"],
                "imageID": f"registry.example.com/{deployment}@sha256:{i:064d}",
                "containerID": f"containerd://{i:064x}",
                "state": {"running": {"startedAt": "2026-11-30T08:00:05Z"}},
                "lastState": {},
            },
        ],
    }
    events: list[Obj] = []
    log: Obj | None = None
    cs = status["containerStatuses"][0]
    if failure is not None:
        status["conditions"][1] = {
            "type": "Ready",
            "status": "False",
            "lastTransitionTime": "2026-11-30T09:00:00Z",
            "reason": "ContainersNotReady",
        }
        cs["ready"] = False
    if failure in ("oom", "crash-logs"):
        cs["restartCount"] = 12
        cs["state"] = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 5m0s restarting failed container=app pod={name}_{namespace}({uid})",
            }
        }
        reason = "OOMKilled" if failure == "oom" else "Error"
        cs["lastState"] = {
            "terminated": {
                "reason": reason,
                "exitCode": 137 if failure == "oom" else 1,
                "startedAt": "2026-11-30T09:58:00Z",
                "finishedAt": "2026-11-30T09:58:40Z",
            }
        }
        events.append(
            _event(
                i,
                namespace,
                name,
                uid,
                "BackOff",
                f"Back-off restarting failed container app in pod {name}_{namespace}({uid})",
            )
        )
        if failure == "crash-logs":
            log = {
                "apiVersion": "aetherius.io/v1",
                "kind": "PodLogs",
                "metadata": {"namespace": namespace, "name": name},
                "container": "app",
                "previous": True,
                "text": "2026-11-30T09:58:39Z INFO starting\n2026-11-30T09:58:40Z FATAL could not connect to postgres:5432: connection refused\n",
            }
    elif failure == "image":
        status["phase"] = "Pending"
        cs["state"] = {
            "waiting": {
                "reason": "ImagePullBackOff",
                "message": f'Back-off pulling image "{container["image"]}"',
            }
        }
        image = container["image"]
        events.append(
            _event(
                i,
                namespace,
                name,
                uid,
                "Failed",
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image "{image}": failed to resolve reference "{image}": {image}: not found',
            )
        )
    elif failure == "config":
        status["phase"] = "Pending"
        cs["state"] = {
            "waiting": {
                "reason": "CreateContainerConfigError",
                "message": f'configmap "{deployment}-config" not found',
            }
        }
    elif failure == "unschedulable":
        status = {
            "phase": "Pending",
            "qosClass": "Burstable",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastTransitionTime": "2026-11-30T09:00:00Z",
                    "message": "0/200 nodes are available: 200 Insufficient memory. preemption: 0/200 nodes are available: 200 No preemption victims found for incoming pod.",
                }
            ],
        }
        node = ""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "resourceVersion": str(100000 + i),
            "creationTimestamp": "2026-11-30T08:00:00Z",
            "generateName": f"{deployment}-7d9f8c6b5-",
            "labels": {"app": deployment, "pod-template-hash": "7d9f8c6b5", "team": f"team-{i % 13}"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-29T12:00:00Z"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{deployment}-7d9f8c6b5",
                    "uid": rs_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": [container],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": node or None,
            "schedulerName": "default-scheduler",
            "priority": 0,
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
            "volumes": [
                {
                    "name": "kube-api-access",
                    "projected": {
                        "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]
                    },
                }
            ],
        },
        "status": status,
    }
    if not node:
        del pod["spec"]["nodeName"]
    return pod, events, log


def _event(i: int, namespace: str, name: str, uid: str, reason: str, message: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name}.{i:016x}",
            "namespace": namespace,
            "uid": f"e0000000-0000-4000-8000-{i:012d}",
            "creationTimestamp": "2026-11-30T09:00:00Z",
        },
        "involvedObject": {
            "kind": "Pod",
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "apiVersion": "v1",
        },
        "reason": reason,
        "message": message,
        "type": "Warning",
        "count": 7,
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2026-11-30T09:00:00Z",
        "lastTimestamp": NOW,
    }


def generate(pods: int, *, seed: int = 7) -> Obj:
    """A deterministic cluster: 10 pods per Deployment, 20% failing, in proportion for other kinds."""
    rng = random.Random(seed)
    nodes, services, events_total = max(3, pods // 50), max(1, pods // 20), max(10, pods * 3 // 10)
    items: list[Obj] = []
    for n in range(nodes):
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": f"node-{n}", "labels": {"kubernetes.io/hostname": f"node-{n}"}},
                "status": {
                    "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                    "conditions": [
                        {"type": t, "status": "False"}
                        for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
                    ]
                    + [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                },
            }
        )
    failing_deployments = set(rng.sample(range(pods // 10), k=max(1, pods // 50)))
    events: list[Obj] = []
    logs: list[Obj] = []
    for d in range(max(1, pods // 10)):
        namespace = f"team-{d % 20}"
        deployment = f"svc-{d:04d}"
        dep_uid, rs_uid = f"d0000000-0000-4000-8000-{d:012d}", f"r0000000-0000-4000-8000-{d:012d}"
        failure = _FAILURES[d % len(_FAILURES)] if d in failing_deployments else None
        items.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": deployment, "namespace": namespace, "uid": dep_uid},
                "spec": {"replicas": 10, "selector": {"matchLabels": {"app": deployment}}},
                "status": {
                    "replicas": 10,
                    "availableReplicas": 0 if failure else 10,
                    "conditions": [
                        {"type": "Available", "status": "False" if failure else "True"},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                    ],
                },
            }
        )
        items.append(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{deployment}-7d9f8c6b5",
                    "namespace": namespace,
                    "uid": rs_uid,
                    "labels": {"app": deployment, "pod-template-hash": "7d9f8c6b5"},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": deployment,
                            "uid": dep_uid,
                            "controller": True,
                        }
                    ],
                },
                "spec": {"replicas": 10},
                "status": {"replicas": 10, "readyReplicas": 0 if failure else 10},
            }
        )
        for p in range(10):
            i = d * 10 + p
            pod, pod_events, log = _pod(
                i,
                deployment=deployment,
                rs_uid=rs_uid,
                namespace=namespace,
                node=f"node-{i % nodes}",
                failure=failure,
            )
            items.append(pod)
            events.extend(pod_events)
            if log is not None:
                logs.append(log)
        if d < services:
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": deployment, "namespace": namespace},
                    "spec": {
                        "selector": {"app": deployment},
                        "ports": [{"port": 80, "targetPort": 8080}],
                        "type": "ClusterIP",
                    },
                }
            )
    while len(events) < events_total:
        i = len(events)
        events.append(
            _event(
                10**6 + i,
                f"team-{i % 20}",
                f"svc-{i % (pods // 10):04d}-7d9f8c6b5-{i:05d}",
                "",
                "Pulled",
                "Container image already present on machine",
            )
        )
    items.extend(events[:events_total])
    items.extend(logs)
    return {"apiVersion": "v1", "kind": "List", "items": items}


def _best_interleaved(fns: list[Any], repeat: int) -> tuple[list[float], list[float]]:
    """Best wall time and best CPU time of each function, run in turn ``repeat`` times.

    NB: alternating the runs lets the floor and the diagnosis see the same load on a shared
    machine; measured one after the other, a burst of noise lands on one side of the ratio.
    CPU time (``process_time``) leaves out the time the process waited for a core.
    """
    best = [float("inf")] * len(fns)
    best_cpu = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            best_cpu[i] = min(best_cpu[i], time.process_time() - start_cpu)
            best[i] = min(best[i], time.perf_counter() - start)
    return best, best_cpu


async def _live(path: Path, tmp: Path) -> float:
    from aetherius.kube import KubeClient
    from aetherius.sim import SimCluster

    async with SimCluster(scenario=path) as sim:
        kubeconfig = Path(sim.write_kubeconfig(tmp / "kubeconfig"))
        async with await KubeClient.from_kubeconfig(kubeconfig) as client:
            start = time.perf_counter()
            await diagnose(live_gateway(client))
            return time.perf_counter() - start


async def _live_cli(path: Path, tmp: Path) -> tuple[float, float]:
    """``aetherius diagnose`` as a person runs it against the sim: wall seconds and its peak RSS.

    NB: a process of its own, so its peak RSS is the diagnosis' alone (this one generated the
    cluster and serves it). The peak is the kernel's high-water mark of the child (``VmHWM``,
    reset by exec), read while it runs: ``ru_maxrss`` of a child would count the pages of this
    process it was forked from.
    """
    from aetherius.sim import SimCluster

    async with SimCluster(scenario=path) as sim:
        kubeconfig = Path(sim.write_kubeconfig(tmp / "kubeconfig"))
        start = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aetherius",
            "diagnose",
            "--kubeconfig",
            str(kubeconfig),
            "-o",
            "json",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        status = Path(f"/proc/{process.pid}/status")
        peak_kib = 0
        waiting = asyncio.ensure_future(process.communicate())
        while not waiting.done():
            try:
                for line in status.read_text().splitlines():  # noqa: ASYNC240 (procfs: no disk)
                    if line.startswith("VmHWM:"):
                        peak_kib = max(peak_kib, int(line.split()[1]))
            except (OSError, ValueError, IndexError):
                pass  # exited between two reads
            await asyncio.wait([waiting], timeout=0.02)
        _, stderr = waiting.result()
        seconds = time.perf_counter() - start
    if process.returncode not in (0, 3):
        raise RuntimeError(f"aetherius diagnose exited {process.returncode}: {stderr.decode()[-500:]}")
    return seconds, peak_kib / 1024


def run(pods: int, *, repeat: int, live: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cluster.json"
        path.write_bytes(orjson.dumps(generate(pods)))
        data = path.read_bytes()
        findings: list[int] = []

        def floor() -> None:
            with paused_gc():  # the floor at its fastest: the decoded tree has no cycles to collect
                orjson.loads(data)

        def full() -> None:
            # What `aetherius diagnose --snapshot` does: read, parse, diagnose under one GC pause;
            # the decoded state is freed (by reference counting) before the collector resumes.
            with paused_gc():
                result = asyncio.run(diagnose(snapshot_gateway(path)))
            findings.append(len(result.findings))

        (parse_s, diagnose_s), (parse_cpu_s, diagnose_cpu_s) = _best_interleaved([floor, full], repeat)
        live_s = asyncio.run(_live(path, Path(tmp))) if live else None
        cli_s, cli_rss = asyncio.run(_live_cli(path, Path(tmp))) if live else (None, None)
    return {
        "pods": pods,
        "diagnose_s": round(diagnose_s, 4),
        "parse_s": round(parse_s, 4),
        "ratio": round(diagnose_s / parse_s, 2),
        "cpu_ratio": round(diagnose_cpu_s / parse_cpu_s, 2),
        "live_s": round(live_s, 3) if live_s is not None else None,
        "live_cli_s": round(cli_s, 3) if cli_s is not None else None,
        "live_peak_rss_mib": round(cli_rss, 1) if cli_rss is not None else None,
        "findings": findings[-1],
        "snapshot_mb": round(len(data) / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--no-live", action="store_true", help="skip the run through the simulated cluster")
    args = parser.parse_args(argv)
    figures = run(args.pods, repeat=args.repeat, live=not args.no_live)
    if args.json:
        sys.stdout.write(
            orjson.dumps(
                {
                    k: figures[k]
                    for k in (
                        "pods",
                        "diagnose_s",
                        "parse_s",
                        "ratio",
                        "cpu_ratio",
                        "live_s",
                        "live_cli_s",
                        "live_peak_rss_mib",
                    )
                }
            ).decode()
            + "\n"
        )
    else:
        for key, value in figures.items():
            print(f"{key:12} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
