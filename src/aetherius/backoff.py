"""The one retry delay: exponential from ``base``, capped, optionally jittered.

Used wherever Aetherius waits before trying again (a Signal's redelivery, a notification's next
attempt, a watch reconnect), so every retry in the product grows and is capped the same way.
(The simulated kubelet's crash-loop back-off is not a retry of ours: it imitates Kubernetes'.)
"""

from __future__ import annotations

import random

__all__ = ["exponential"]


def exponential(attempt: int, *, base: float, cap: float, jitter: float = 0.0) -> float:
    """Seconds to wait after ``attempt`` failed tries (1: ``base``, 2: twice that…), at most ``cap``.

    ``jitter`` spreads the delay by ±that fraction, so replicas that failed together do not all
    come back at the same instant.
    """
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    if jitter:
        delay *= 1 + random.uniform(-jitter, jitter)
    return float(max(0.0, delay))
