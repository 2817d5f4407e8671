"""A minimal RBAC model for the simulated cluster: rules per bearer token, and the one question.

The sim does not enforce rules on requests (tests write through the Python API, and what
Aetherius may send is proven at the client); it answers the ``SelfSubjectRulesReview`` a client
asks about its own token, as ``kubectl auth can-i --list`` does, so a test can hand Aetherius a
kubeconfig whose user may write and one whose user may only read.

Every token not granted anything has ``READ_ONLY`` (what the deployment's ClusterRole gives).
``grant`` sets a token's rules, cluster-wide or in one namespace; a review in a namespace
answers the cluster-wide rules and that namespace's, the way RBAC's RoleBindings add up.
"""

from __future__ import annotations

from typing import Any

from aetherius.sim import errors

RULES_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
DEFAULT_TOKEN = "aetherius-sim-token"

Rule = dict[str, list[str]]

READ_ONLY: list[Rule] = [{"verbs": ["get", "list", "watch"], "apiGroups": ["*"], "resources": ["*"]}]
# What every authenticated user may ask of a real API server (system:basic-user, system:discovery).
_BASIC_RESOURCE_RULES: list[Rule] = [
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
]
_NON_RESOURCE_RULES: list[Rule] = [
    {
        "verbs": ["get"],
        "nonResourceURLs": [
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
            "/healthz",
            "/livez",
            "/readyz",
            "/version",
            "/version/",
        ],
    },
]


class Rbac:
    """Rules by token; ``None`` as namespace means cluster-wide."""

    def __init__(self) -> None:
        self._rules: dict[str, dict[str | None, list[Rule]]] = {}

    def grant(self, token: str, rules: list[Rule], *, namespace: str | None = None) -> None:
        """Replace ``token``'s rules (cluster-wide, or in ``namespace`` only)."""
        self._rules.setdefault(token, {})[namespace] = [dict(rule) for rule in rules]

    def rules(self, token: str, namespace: str) -> list[Rule]:
        granted = self._rules.get(token)
        if granted is None:
            return [dict(rule) for rule in READ_ONLY]
        return [dict(rule) for rule in granted.get(None, []) + granted.get(namespace, [])]

    def review(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to a ``SelfSubjectRulesReview`` body, as the API server returns it (201)."""
        if body.get("kind") != "SelfSubjectRulesReview" or not str(body.get("apiVersion", "")).startswith(
            "authorization.k8s.io/"
        ):
            raise errors.bad_request("expected a SelfSubjectRulesReview of authorization.k8s.io/v1")
        spec = body.get("spec") or {}
        namespace = spec.get("namespace") if isinstance(spec, dict) else None
        if not isinstance(namespace, str) or not namespace:
            raise errors.bad_request("no namespace on request")  # the real server's words
        return {
            "kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": {"namespace": namespace},
            "status": {
                "resourceRules": self.rules(token, namespace) + [dict(r) for r in _BASIC_RESOURCE_RULES],
                "nonResourceRules": [dict(r) for r in _NON_RESOURCE_RULES],
                "incomplete": False,
            },
        }


PROTOBUF = "application/vnd.kubernetes.protobuf"
_PROTOBUF_MAGIC = b"k8s\x00"


def _fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of one protobuf message (varints skipped), last one wins."""
    found: dict[int, bytes] = {}
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            if pos >= len(data):
                raise errors.bad_request("truncated protobuf body")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire == 2:
            size = varint()
            found[number] = data[pos : pos + size]
            pos += size
        else:
            raise errors.bad_request(f"unexpected protobuf wire type {wire}")
    return found


def review_from_protobuf(body: bytes) -> dict[str, Any]:
    """A protobuf ``SelfSubjectRulesReview`` (what kubectl sends) as its JSON form.

    The envelope is ``k8s\\0`` + ``runtime.Unknown`` {1: typeMeta {1: apiVersion, 2: kind},
    2: raw}; ``raw`` is the review {2: spec {1: namespace}}. Nothing else of it matters here.
    """
    if not body.startswith(_PROTOBUF_MAGIC):
        raise errors.bad_request("a protobuf body starts with k8s\\0")
    unknown = _fields(body[len(_PROTOBUF_MAGIC) :])
    type_meta = _fields(unknown.get(1, b""))
    spec = _fields(_fields(unknown.get(2, b"")).get(2, b""))
    return {
        "apiVersion": type_meta.get(1, b"").decode(),
        "kind": type_meta.get(2, b"").decode(),
        "spec": {"namespace": spec.get(1, b"").decode()},
    }


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer …`` header ("" without one)."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
