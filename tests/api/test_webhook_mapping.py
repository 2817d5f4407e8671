"""Alertmanager and generic payloads → Signals, on the fixtures in Alertmanager's own format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from aetherius.api.webhooks import (
    AlertmanagerPayload,
    GenericPayload,
    alert_severity,
    alert_to_signal,
    generic_to_signal,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> AlertmanagerPayload:
    return AlertmanagerPayload.model_validate(json.loads((FIXTURES / name).read_text()))


def test_firing_group_maps_each_alert_to_the_most_specific_object() -> None:
    payload = load("firing.json")
    pod, deployment, node = (alert_to_signal(a, payload, default_cluster="prod") for a in payload.alerts)

    assert (pod.object.kind, pod.object.namespace, pod.object.name) == ("Pod", "shop", "api-7d9f8-x2k4q")
    assert pod.owner is not None and (pod.owner.kind, pod.owner.name) == ("Deployment", "api")
    assert pod.source == "alertmanager" and pod.reason == "KubePodCrashLooping"
    assert pod.message.startswith("Pod is crash looping. — Pod shop/api-7d9f8-x2k4q")
    assert pod.container == "api" and pod.severity == "warning" and not pod.resolved
    assert pod.cluster_id == "prod" and pod.first_seen == "2026-11-30T10:00:07Z"

    assert (deployment.object.kind, deployment.object.name, deployment.severity) == (
        "Deployment",
        "checkout",
        "critical",
    )
    assert (node.object.kind, node.object.name, node.object.namespace) == ("Node", "worker-3", "")


def test_resolution_shares_the_dedup_key_but_not_the_message_id() -> None:
    firing = load("firing.json")
    resolved = load("resolved.json")
    fired = alert_to_signal(firing.alerts[0], firing, default_cluster="prod")
    ended = alert_to_signal(resolved.alerts[0], resolved, default_cluster="prod")
    assert ended.resolved and ended.last_seen == "2026-11-30T10:25:07Z"
    assert fired.dedup_key == ended.dedup_key
    assert fired.msg_id != ended.msg_id
    # Alertmanager's repeat notification of the same episode is the same message (bus dedup).
    again = alert_to_signal(firing.alerts[0], firing, default_cluster="prod")
    assert again.msg_id == fired.msg_id


def test_other_alerts_have_other_keys_and_clusters_come_from_labels() -> None:
    payload = load("firing.json")
    keys = {alert_to_signal(a, payload, default_cluster="prod").dedup_key for a in payload.alerts}
    assert len(keys) == 3
    payload.alerts[0].labels["cluster"] = "eu-1"
    assert alert_to_signal(payload.alerts[0], payload, default_cluster="prod").cluster_id == "eu-1"


def test_minimal_payload_without_fingerprint_still_gets_a_stable_key() -> None:
    payload = load("minimal.json")
    first = alert_to_signal(payload.alerts[0], payload, default_cluster="c")
    second = alert_to_signal(load("minimal.json").alerts[0], payload, default_cluster="c")
    assert first.dedup_key == second.dedup_key
    assert first.object.kind == "Alert" and first.object.name == "DiskRunningFull"
    assert first.message == "DiskRunningFull"


@pytest.mark.parametrize(
    ("label", "expected"),
    [("critical", "critical"), ("Error", "critical"), ("warning", "warning"), ("none", "info"), (None, "warning")],
)
def test_severity_labels_map_onto_our_scale(label: str | None, expected: str) -> None:
    assert alert_severity(label) == expected


def test_wrong_version_or_status_is_refused() -> None:
    raw = json.loads((FIXTURES / "firing.json").read_text())
    with pytest.raises(ValidationError):
        AlertmanagerPayload.model_validate({**raw, "version": "3"})
    raw["alerts"][1]["status"] = "exploded"
    with pytest.raises(ValidationError):
        AlertmanagerPayload.model_validate(raw)


def test_generic_signal_keys_on_the_senders_id() -> None:
    payload = GenericPayload.model_validate(
        {"signals": [{"id": "check-42", "name": "db-0", "kind": "Pod", "namespace": "data", "reason": "Unhealthy"}]}
    )
    signal = generic_to_signal(payload.signals[0], source="generic", default_cluster="prod")
    assert signal.source == "webhook" and signal.object.name == "db-0" and signal.message == "Unhealthy"
    assert signal.labels["aetherius.io/webhook-source"] == "generic"
    bumped = payload.signals[0].model_copy(update={"occurrence": 2})
    assert generic_to_signal(bumped, source="generic", default_cluster="prod").dedup_key == signal.dedup_key
    with pytest.raises(ValidationError):
        GenericPayload.model_validate({"signals": [{"id": "x", "name": "a", "reason": "r", "bogus": 1}]})
