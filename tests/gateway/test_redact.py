"""Redaction: real-looking leaks in logs, env, events and Secrets never leave the gateway."""

from __future__ import annotations

import copy

import pytest

from aetherius.gateway import MASK, redact_object, scrub_text

LEAKS = [
    (
        "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl",
        "eyJzdWIi",
    ),
    ("GET /api with header authorization=Bearer abcdef0123456789abcdef", "abcdef0123456789abcdef"),
    ("connecting to postgres://shop:hunter2pass@db.shop.svc:5432/orders", "hunter2pass"),
    ("redis url redis://:S3cr3tRedis@redis:6379/0", "S3cr3tRedis"),
    ("DB_PASSWORD=correct-horse-battery", "correct-horse-battery"),
    ("PASSWORD: Tr0ub4dor&3", "Tr0ub4dor"),
    ('{"password": "p@ssw0rd!", "user": "app"}', "p@ssw0rd!"),
    ("using key AKIAIOSFODNN7EXAMPLE for s3", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("maps key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIzaSyD-9tSrke72PouQMnMX"),
    ("gcp creds AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY loaded", "AIzaSyD-9tSrke72PouQMnMX"),
    (
        '{"type": "service_account", "private_key_id": "8f2a9c0b1d", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n"}',
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq9\nabc\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA7bq9",
    ),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRtaW4ifQ.dGVzdHNpZ25hdHVyZQ", "eyJ1c2VyIjoiYWRtaW4ifQ"),
    ("export GITHUB_TOKEN ghp_1234567890abcdefghijklmnopqrstuvwxyz", "ghp_1234567890abcdefghij"),
]


@pytest.mark.parametrize(("text", "secret"), LEAKS)
def test_scrub_removes_leak(text: str, secret: str) -> None:
    scrubbed = scrub_text(text)
    assert secret not in scrubbed
    assert MASK in scrubbed


def test_scrub_keeps_the_diagnostic_words() -> None:
    line = "FATAL could not connect to postgres:5432: connection refused"
    assert scrub_text(line) == line
    assert "connection refused" in scrub_text("dial postgres://app:pw1234@db:5432: connection refused")


def test_scrub_is_idempotent() -> None:
    once = scrub_text("DB_PASSWORD=abc123 url=https://u:p4ss@h/x")
    assert scrub_text(once) == once


def test_secret_keeps_metadata_only() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "db-credentials",
            "namespace": "shop",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"aHVudGVyMg=="}}'
            },
        },
        "data": {"password": "aHVudGVyMg=="},
        "stringData": {"password": "hunter2"},
    }
    out = redact_object("Secret", copy.deepcopy(secret))
    assert set(out) == {"apiVersion", "kind", "metadata", "type"}
    assert "aHVudGVyMg" not in str(out) and "hunter2" not in str(out)


def test_pod_env_reported_by_source_and_masked() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "containers": [
                {
                    "name": "api",
                    "args": ["--dsn=postgres://app:Sup3rS3cret@db:5432/shop"],
                    "env": [
                        {
                            "name": "DB_PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}},
                        },
                        {
                            "name": "LOG_LEVEL",
                            "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "level"}},
                        },
                        {"name": "API_TOKEN", "value": "tok_live_51HxYz"},
                        {"name": "STRIPE_KEY", "value": "sk_live_abcdef"},
                        {"name": "DATABASE_URL", "value": "postgres://app:Pa55word@db/shop"},
                        {"name": "MODE", "value": "production"},
                    ],
                }
            ]
        },
        "status": {
            "containerStatuses": [
                {"name": "api", "state": {"terminated": {"message": "password=hunter22 rejected"}}}
            ]
        },
    }
    out = redact_object("Pod", pod)
    env = {var["name"]: var for var in out["spec"]["containers"][0]["env"]}
    assert env["DB_PASSWORD"]["source"] == "secretKeyRef db-credentials/password"
    assert env["LOG_LEVEL"]["source"] == "configMapKeyRef app-config/level"
    assert env["API_TOKEN"]["value"] == MASK and env["STRIPE_KEY"]["value"] == MASK
    assert "Pa55word" not in env["DATABASE_URL"]["value"]
    assert env["MODE"]["value"] == "production"
    text = str(out)
    for leak in ("Sup3rS3cret", "tok_live", "sk_live", "Pa55word", "hunter22"):
        assert leak not in text


def test_configmap_values_dropped_keys_kept() -> None:
    out = redact_object(
        "ConfigMap",
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"url": "x://u:p@h", "level": "debug"}},
    )
    assert out["data"] == {"url": "", "level": ""}


def test_redaction_takes_any_shape_of_object() -> None:
    """Objects come from files and clusters as they are: odd shapes are redacted, never a crash."""
    for spec in (
        True,
        [],
        {"containers": True},
        {"template": {"spec": {"containers": "x"}}},
        {"jobTemplate": 1},
    ):
        redact_object("Deployment", {"kind": "Deployment", "metadata": {"name": "d"}, "spec": spec})
        redact_object("Pod", {"kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
