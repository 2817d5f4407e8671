"""``/_sim/``: the test and demo control plane (not part of the Kubernetes API).

- ``GET  /_sim/state``                      resourceVersion, open watches, faults injected so far
- ``GET  /_sim/ledger?after=RV``            watch events emitted (rv, type, kind, namespace, name, uid)
- ``POST /_sim/faults/<name>``  JSON kwargs one of: close_watches {abort}, gone_on_connect {n, in_stream},
  gone_in_stream, throttle {n, retry_after, path_prefix}, error {n, status, path_prefix},
  stall {seconds}, expire_continue_tokens, reset
- ``POST /_sim/timeline/advance`` {seconds}; ``POST /_sim/timeline/run_to_end``
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from aetherius.sim import errors

if TYPE_CHECKING:
    from aetherius.sim.server import ApiServer

FAULTS = frozenset(
    {
        "close_watches",
        "gone_on_connect",
        "gone_in_stream",
        "throttle",
        "error",
        "stall",
        "expire_continue_tokens",
        "reset",
    }
)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def _kwargs(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object of keyword arguments")
    return body


async def handle_admin(server: ApiServer, request: web.Request) -> web.Response:
    parts = [part for part in request.path.split("/") if part][1:]
    if request.method == "GET" and parts == ["state"]:
        return _json(
            {
                "resourceVersion": server.store.resource_version,
                "compactedResourceVersion": server.store.compacted_rv,
                "openWatches": len(server.faults.open_watches),
                "injected": dict(server.faults.injected),
                "requests": server.requests,
            }
        )
    if request.method == "GET" and parts == ["ledger"]:
        try:
            after = int(request.query.get("after", "0") or 0)
        except ValueError:
            raise errors.bad_request("after must be an integer resourceVersion") from None
        entries = [entry._asdict() for entry in server.store.ledger if entry.rv > after]
        return _json({"entries": entries})
    if request.method == "POST" and len(parts) == 2 and parts[0] == "faults" and parts[1] in FAULTS:
        method = getattr(server.faults, parts[1])
        kwargs = await _kwargs(request)
        try:
            inspect.signature(method).bind(**kwargs)
        except TypeError as exc:
            raise errors.bad_request(f"{parts[1]}: {exc}") from None
        result = method(**kwargs)
        return _json({"fault": parts[1], "result": result})
    if request.method == "POST" and len(parts) == 2 and parts[0] == "timeline" and server.admin is not None:
        kwargs = await _kwargs(request)
        try:
            result = server.admin(parts[1], kwargs)
        except (TypeError, ValueError, KeyError) as exc:
            raise errors.bad_request(f"timeline {parts[1]}: {exc}") from None
        return _json({"timeline": parts[1], "result": result})
    raise errors.path_not_found(request.path)
