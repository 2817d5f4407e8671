"""Two simulated clusters from the demo, each with failures the other does not have.

Both come from the demo scenario, so they look alike; what tells them apart is what plays on
their timelines (``alpha``: everything but the checkout crash; ``beta``: the checkout crash and
the system pods only) and their kube-system UIDs (so the ids detected from them differ).
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from typing import Any

from aetherius.sim import Scenario, load_scenario

CHECKOUT = "shop/checkout"


def without_checkout(step: dict[str, Any]) -> bool:
    return not str(step.get("pod", "")).startswith(CHECKOUT)


def checkout_only(step: dict[str, Any]) -> bool:
    return str(step.get("pod", "")).startswith(("kube-system/", CHECKOUT, "shop/cart"))


def demo_variant(keep: Callable[[dict[str, Any]], bool], *, uid: str | None = None) -> Scenario:
    """The demo with only the timeline steps ``keep`` accepts and kube-system's UID ``uid``."""
    demo = load_scenario("demo")
    objects = copy.deepcopy(demo.objects)
    if uid is not None:
        for obj in objects:
            if obj.get("kind") == "Namespace" and obj["metadata"]["name"] == "kube-system":
                obj["metadata"]["uid"] = uid
    return Scenario(
        name=f"{demo.name}-variant",
        objects=objects,
        logs=copy.deepcopy(demo.logs),
        timeline=[step for step in demo.timeline if keep(step)],
        ignored=list(demo.ignored),
    )


def fresh_uid() -> str:
    """A kube-system UID no other test uses (its first 8 characters name the cluster)."""
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
