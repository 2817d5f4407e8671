"""The agents that run beside a cluster's nodes: ``aetherius agent --mode node``.

The node agent reads what the kubelet and the kernel know before the API server does (pressure
trending towards eviction, kernel OOM kills, file systems gone read-only) and publishes Signals on
the same bus as the Watcher. It is read-only: the kubelet's authenticated stats endpoint
(``nodes/stats``, never ``nodes/proxy``) and kernel log files mounted read-only.
"""
