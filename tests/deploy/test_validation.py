"""Everything we ship validates against the Kubernetes OpenAPI schemas of a current release."""

from __future__ import annotations

from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.deploy.rendering import Doc

KUBERNETES_VERSION = kubernetes_validate.utils.latest_version()


def _validate_servicemonitor(doc: Doc) -> None:
    # NB: ServiceMonitor is a Prometheus Operator CRD, absent from the Kubernetes schemas; check the
    # fields the operator requires by hand instead of skipping it.
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["metadata"]["name"] and doc["metadata"]["namespace"]
    spec = doc["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    assert spec["selector"]["matchLabels"], "an empty selector would scrape every Service"
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "interval", "path", "scheme", "scrapeTimeout"}
        assert endpoint["port"] == "metrics"
        assert endpoint["path"] == "/metrics"


def validate(doc: Doc) -> None:
    if doc["kind"] == "ServiceMonitor":
        _validate_servicemonitor(doc)
        return
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_current_kubernetes_release_is_used() -> None:
    major, minor = (int(part) for part in KUBERNETES_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 33)


def test_every_rendered_manifest_validates(sources: dict[str, list[Doc]]) -> None:
    failures: list[str] = []
    for source, docs in sources.items():
        assert docs, source
        for doc in docs:
            try:
                validate(doc)
            except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
                failures.append(f"{source} {doc.get('kind')}/{doc['metadata'].get('name')}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d["spec"].__setitem__("replicas", "one"), "replicas"),
        (lambda d: d["spec"]["template"]["spec"].__setitem__("runAsUserr", 1000), "runAsUserr"),
    ],
)
def test_validation_catches_a_broken_manifest(kustomized: list[Doc], mutate: Any, needle: str) -> None:
    """The validator really refuses a bad Deployment (the check above can fail)."""
    import copy

    deployment = copy.deepcopy(next(d for d in kustomized if d["kind"] == "Deployment"))
    mutate(deployment)
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        validate(deployment)
    assert needle in str(caught.value)
