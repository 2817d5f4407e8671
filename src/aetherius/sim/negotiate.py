"""Content negotiation on ``Accept``: the whole object, a ``Table``, or metadata only.

As on the real API server (apiserver ``endpoints/handlers/response.go``), a client may ask for
an alternate representation with ``as=Table`` or ``as=PartialObjectMetadata`` /
``as=PartialObjectMetadataList`` (``g=meta.k8s.io``, ``v=v1`` or ``v1beta1``). The first clause
of the header the server can serve wins; a clause asking for an ``as=`` the server does not know
is passed over, and a header with nothing servable left is 406. Asking for
``PartialObjectMetadata`` on a list (or ``…List`` on one object) is 406 too, not a silent
fallback: a metadata-only client must never be sent the objects' bodies (a Secret's ``data``).
"""

from __future__ import annotations

from typing import Any, Literal

from aetherius.sim.errors import ApiError
from aetherius.sim.store import Obj

__all__ = ["Form", "negotiate", "partial_list", "partial_object"]

Form = Literal["json", "table", "metadata"]

META_GROUP = "meta.k8s.io"
_META_VERSIONS = ("v1", "v1beta1")
_ALTERNATES = {"Table", "PartialObjectMetadata", "PartialObjectMetadataList"}


def _not_acceptable(message: str) -> ApiError:
    return ApiError(code=406, reason="NotAcceptable", message=message)


def _clauses(accept: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for raw in accept.split(","):
        parts = [part.strip() for part in raw.split(";")]
        if not parts[0]:
            continue
        params = {}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            params[key.strip()] = value.strip()
        out.append((parts[0].lower(), params))
    return out


def negotiate(accept: str, *, is_list: bool) -> tuple[Form, str]:
    """The representation to send, and the meta.k8s.io version it is in (for alternates)."""
    clauses = _clauses(accept)
    if not clauses:
        return "json", ""
    asked_alternate = False
    for media, params in clauses:
        if media not in ("application/json", "application/*", "*/*"):
            continue
        wanted = params.get("as")
        if wanted is None:
            return "json", ""
        asked_alternate = True
        if (
            wanted not in _ALTERNATES
            or params.get("g") != META_GROUP
            or params.get("v", "v1") not in _META_VERSIONS
        ):
            continue  # not servable: the next clause may be
        version = params.get("v", "v1")
        if wanted == "Table":
            return "table", version
        if wanted == "PartialObjectMetadataList" and not is_list:
            raise _not_acceptable(
                "you requested PartialObjectMetadataList, but the requested object is not a list"
            )
        if wanted == "PartialObjectMetadata" and is_list:
            raise _not_acceptable("you requested PartialObjectMetadata, but the requested object is a list")
        return "metadata", version
    if asked_alternate:
        raise _not_acceptable(
            f"only the following media types are accepted: application/json (asked: {accept})"
        )
    return "json", ""


def partial_object(obj: Obj, *, version: str = "v1") -> Obj:
    """The object's ``metadata`` and nothing else (``meta.AsPartialObjectMetadata``)."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"{META_GROUP}/{version}",
        "metadata": obj.get("metadata", {}),
    }


def partial_list(objects: list[Obj], *, metadata: dict[str, Any], version: str = "v1") -> Obj:
    """A ``PartialObjectMetadataList``: each item carries its own kind, as the real server's do."""
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": f"{META_GROUP}/{version}",
        "metadata": metadata,
        "items": [partial_object(obj, version=version) for obj in objects],
    }
