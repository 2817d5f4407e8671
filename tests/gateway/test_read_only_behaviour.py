"""Read-only by behaviour, not by naming: whatever a caller does through the gateway and the
client, the server sees GETs and nothing else.

A recording HTTP server on loopback answers every path (an empty list for a LIST, 404 otherwise)
and keeps the method and path of every request it receives. Every read of the gateway, a whole
diagnosis, a snapshot capture and a single-object diagnosis are driven against it; then every
write a caller could attempt, at the client's own door, and names that try to leave the API's
path. The server must have seen only GETs, and none of them under ``secrets``.

One POST is allowed, and only one: the ``SelfSubjectRulesReview`` asking what the client's own
credentials may do (the start-up warning about kubeconfigs that could write). The server must
see it at exactly that path with exactly that body; a POST anywhere else, or a review about
another user, or any other body at that path, never leaves the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from aetherius.diagnosis import diagnose, diagnose_object
from aetherius.diagnosis.capture import capture_state
from aetherius.gateway import KINDS, BackendError, live_gateway
from aetherius.kube import KubeClient, ReadOnlyViolation
from aetherius.kube.client import RULES_REVIEW_PATH, rules_review
from aetherius.kube.permissions import write_access
from aetherius.sim.cluster import write_kubeconfig
from tests.services import free_port


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.bodies: list[bytes] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path))
        if request.method != "GET":
            self.bodies.append(await request.read())
        if request.path == RULES_REVIEW_PATH:
            review = {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1"}
            return web.json_response({**review, "status": {"resourceRules": []}}, status=201)
        last = request.path.rstrip("/").rsplit("/", 1)[-1]
        if (
            request.method == "GET"
            and not request.match_info.get("name")
            and last
            and not last.startswith("node-")
        ):
            return web.json_response(
                {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []}
            )
        return web.json_response(
            {"kind": "Status", "code": 404, "reason": "NotFound", "message": "not found"}, status=404
        )


@pytest.fixture
async def recorded(tmp_path: Path) -> AsyncIterator[tuple[Recorder, KubeClient]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url=f"http://127.0.0.1:{port}")
    async with await KubeClient.from_kubeconfig(kubeconfig) as client:
        yield recorder, client
    await runner.cleanup()


async def test_whatever_a_caller_does_the_server_sees_only_gets(
    recorded: tuple[Recorder, KubeClient],
) -> None:
    recorder, client = recorded
    gateway = live_gateway(client, secret_metadata=False)
    for kind in KINDS:
        try:
            await gateway.list_objects(kind, requester="t", namespace="shop")
            await gateway.get_object(kind, requester="t", namespace="shop", name="api-1")
        except BackendError:
            pass  # a kind the gateway refuses to list (Secrets without the opt-in) is still no write
    await gateway.events_for(requester="t", kind="Pod", namespace="shop", name="api-1")
    await gateway.pod_logs(requester="t", namespace="shop", name="api-1", container="api", previous=True)
    await gateway.node_state(requester="t", name="node-1")
    await diagnose(gateway)
    await diagnose_object(gateway, kind="Deployment", namespace="shop", name="api")
    await capture_state(gateway)
    # Every write a caller could attempt, at the client's own door: refused before the network.
    for method in ("POST", "PUT", "PATCH", "DELETE", "get", "OPTIONS", "HEAD", "CONNECT"):
        with pytest.raises(ReadOnlyViolation):
            async with client._request(method, "/api/v1/namespaces/shop/pods/api-1"):
                pass
    # Names that would leave the object's path, or reach another resource, never reach the wire.
    for name in ("../secrets/db", "api-1/exec", "api%2F..%2Fsecrets", "api-1?dryRun=All", "a\x00b"):
        with pytest.raises(BackendError, match="refused"):
            await gateway.get_object("Pod", requester="t", namespace="shop", name=name)
    assert len(recorder.seen) > len(KINDS)  # the reads did reach the server
    methods = {method for method, _ in recorder.seen}
    assert methods == {"GET"}, sorted(methods)
    assert not [path for _, path in recorder.seen if "/secrets" in path], "a Secret was asked for"
    assert not [
        path for _, path in recorder.seen if path.endswith(("/exec", "/attach", "/portforward", "/proxy"))
    ]


async def test_the_one_post_is_the_question_about_ones_own_rules(
    recorded: tuple[Recorder, KubeClient],
) -> None:
    recorder, client = recorded
    assert await write_access(client) == []
    # Anything else sent as a POST, PUT or PATCH is refused before the network: another path
    # (a write, a review of someone else), or that path with any other body.
    review = RULES_REVIEW_PATH
    others = [
        ("POST", "/api/v1/namespaces/default/pods", rules_review("default")),
        ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", rules_review("default")),
        ("POST", "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews", None),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", rules_review("default")),
        ("POST", review + "/x", rules_review("default")),
        ("PUT", review, rules_review("default")),
        ("PATCH", review, rules_review("default")),
        ("DELETE", review, None),
        ("GET", review, rules_review("default")),
        ("POST", review, None),
        ("POST", review, b"{}"),
        ("POST", review, b'{"kind":"SelfSubjectRulesReview","spec":{"namespace":"default"}}'),
        (
            "POST",
            review,
            b'{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview",'
            b'"spec":{"namespace":"default","user":"admin","groups":["system:masters"]}}',
        ),
        (
            "POST",
            review,
            b'{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",'
            b'"spec":{"namespace":"default","user":"admin"}}',
        ),
        ("POST", review, rules_review("default") + b" "),
        ("POST", review, rules_review("../secrets")),
        ("POST", review, rules_review("Default")),
    ]
    for method, path, body in others:
        with pytest.raises(ReadOnlyViolation):
            async with client._request(method, path, body=body):
                pass
    posted = [(method, path) for method, path in recorder.seen if method != "GET"]
    assert posted == [("POST", review), ("POST", review)], recorder.seen  # default, kube-system
    assert recorder.bodies == [rules_review("default"), rules_review("kube-system")]
    assert {method for method, _ in recorder.seen} == {"POST"}
    assert not [
        path for _, path in recorder.seen if path.endswith(("/exec", "/attach", "/portforward", "/proxy"))
    ]
