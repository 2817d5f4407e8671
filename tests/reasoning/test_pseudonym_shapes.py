"""Names inside DNS names, and names a text reveals before any object introduces them."""

from __future__ import annotations

from aetherius.reasoning.privacy import Pseudonymizer

KEY = b"shape-key"


def test_a_namespace_and_service_inside_dns_names_get_the_tokens_used_elsewhere() -> None:
    p = Pseudonymizer(KEY)
    ns = p.add("namespace", "shop")
    text = (
        "dial payments.shop.svc; dial payments.shop.svc.cluster.local; dial payments.shop:5432; "
        "GET http://payments.shop.svc:8080/x; namespace shop; the payments service"
    )
    sent = p.outbound(text)
    svc = p.names()["payments"]
    assert "shop" not in sent and "payments" not in sent
    assert f"{svc}.{ns}.svc;" in sent and f"{svc}.{ns}.svc.cluster.local;" in sent
    assert f"{svc}.{ns}:5432" in sent and f"http://{svc}.{ns}.svc:8080/x" in sent
    assert f"namespace {ns};" in sent and f"the {svc} service" in sent
    assert p.inbound(sent) == text


def test_a_dns_name_introduces_an_unknown_namespace_and_a_statefulset_pod_host() -> None:
    p = Pseudonymizer(KEY)
    text = "replica db-0.db.inventory.svc.cluster.local lags; warehouse-db.inventory.svc refused"
    sent = p.outbound(text)
    for real in ("db-0", "inventory", "warehouse-db"):
        assert real not in sent
    assert sent.count(p.names()["inventory"]) == 2 and ".svc.cluster.local lags" in sent
    assert p.inbound(sent) == text


def test_other_dotted_names_are_left_alone() -> None:
    p = Pseudonymizer(KEY)
    p.add("namespace", "shop")
    text = "pulled registry.example.io/app:1.2 and read config.yaml at 10.0.0.1; shopping.list"
    assert p.outbound(text) == text


def test_pods_of_known_owners_are_recognized_by_their_names() -> None:
    p = Pseudonymizer(KEY)
    p.learn({"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"}})
    p.learn(
        {
            "kind": "Pod",
            "metadata": {
                "name": "web-5d8f7b9c4-qx7zp",
                "namespace": "shop",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d8f7b9c4"}],
            },
        }
    )
    text = "db-0 and db-12 restarted; web-5d8f7b9c4-x2x9z and web-6c7d8f9b4-zzzzz died; db-backup ran"
    sent = p.outbound(text)
    for real in ("db-0", "db-12", "web-5d8f7b9c4-x2x9z", "web-6c7d8f9b4-zzzzz"):
        assert real not in sent, real
    assert "db-backup" in sent  # not a pod's shape: a word after a known owner's name
    assert p.inbound(sent) == text


def test_a_follow_up_keeps_the_owners() -> None:
    first = Pseudonymizer(KEY)
    first.learn({"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"}})
    second = Pseudonymizer(KEY)
    second.restore(first.names())
    assert "db-3" not in second.outbound("db-3 is behind")
