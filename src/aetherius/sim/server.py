"""The HTTP face of the simulated cluster: Kubernetes API paths, plus ``/_sim/`` for tests.

One catch-all route parses the path the way the real server's installer lays it out
(``/api/v1/namespaces/{ns}/{plural}/{name}/{subresource}``, ``/apis/{group}/{version}/…``),
so every resource in ``resources.RESOURCES`` gets every verb without a route of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from aetherius.sim import discovery, errors, negotiate, tables, views
from aetherius.sim.admin import handle_admin
from aetherius.sim.faults import Faults
from aetherius.sim.podlogs import PodLogs, serve_log
from aetherius.sim.rbac import PROTOBUF, RULES_REVIEW_PATH, Rbac, bearer_token, review_from_protobuf
from aetherius.sim.resources import BY_PATH, GROUP_VERSIONS, ResourceType
from aetherius.sim.selectors import combine, parse_field_selector, parse_label_selector
from aetherius.sim.store import Obj, Store
from aetherius.sim.watch import WatchSpec, WatchStream, parse_bool, parse_watch_params

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


@dataclass(frozen=True, slots=True)
class SentResponse:
    """A response body exactly as it went on the wire (see ``ApiServer.record_responses``)."""

    path: str
    accept: str
    status: int
    body: bytes


@dataclass(kw_only=True)
class Target:
    rt: ResourceType
    namespace: str | None  # None: all namespaces (or a cluster-scoped resource)
    name: str | None
    subresource: str | None


def parse_target(path: str) -> Target | dict[str, Any]:
    """A resource target, or a discovery document, or raise 404 (unknown path)."""
    segments = [segment for segment in path.split("/") if segment]
    if not segments:
        raise errors.path_not_found(path)
    if segments[0] == "api":
        if len(segments) == 1:
            return {"api": True}
        group, version, rest = "", segments[1], segments[2:]
        if version != "v1":
            raise errors.path_not_found(path)
    elif segments[0] == "apis":
        if len(segments) == 1:
            return discovery.api_group_list()
        group = segments[1]
        if len(segments) == 2:
            found = discovery.api_group(group)
            if found is None:
                raise errors.path_not_found(path)
            return found
        version, rest = segments[2], segments[3:]
        if version not in GROUP_VERSIONS.get(group, []):
            raise errors.path_not_found(path)
    else:
        raise errors.path_not_found(path)
    if not rest:
        listing = discovery.resource_list(group, version)
        if listing is None:
            raise errors.path_not_found(path)
        return listing
    if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_PATH:
        rt = BY_PATH[(group, version, rest[2])]
        if not rt.namespaced or len(rest) > 5:
            raise errors.path_not_found(path)
        return Target(
            rt=rt,
            namespace=rest[1],
            name=rest[3] if len(rest) > 3 else None,
            subresource=rest[4] if len(rest) > 4 else None,
        )
    rt_found = BY_PATH.get((group, version, rest[0]))
    if rt_found is None or len(rest) > 3 or (rt_found.namespaced and len(rest) > 1):
        raise errors.path_not_found(path)
    return Target(
        rt=rt_found,
        namespace=None,
        name=rest[1] if len(rest) > 1 else None,
        subresource=rest[2] if len(rest) > 2 else None,
    )


class ApiServer:
    """Request handling over a ``Store``; the aiohttp app comes from ``build_app``."""

    def __init__(
        self,
        *,
        store: Store,
        faults: Faults,
        logs: PodLogs,
        bookmark_interval: float,
        admin: Callable[[str, dict[str, Any]], Any] | None = None,
        rbac: Rbac | None = None,
    ) -> None:
        self.store = store
        self.rbac = rbac or Rbac()
        self.faults = faults
        self.logs = logs
        self.bookmark_interval = bookmark_interval
        self.admin = admin
        self.server_address = "127.0.0.1:0"
        self.requests = 0
        self._record_prefix: str | None = None
        self.sent: list[SentResponse] = []

    def record_responses(self, path_prefix: str) -> list[SentResponse]:
        """From now on keep every non-streamed response body under ``path_prefix`` (tests only).

        Lets a test prove what crossed the wire (e.g. that no Secret ``data`` byte did) rather
        than trust the client's account of it. Replaces any earlier recording.
        """
        self._record_prefix = path_prefix
        self.sent = []
        return self.sent

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors_middleware], client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    @web.middleware
    async def _errors_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.ApiError as error:
            return json_response(error.status(), status=error.code, headers=error.headers)
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug in the sim must still answer like an API server
            log.exception("sim: unhandled error on %s %s", request.method, request.path)
            internal = errors.internal_error(500, f"{type(exc).__name__}: {exc}")
            return json_response(internal.status(), status=500)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim/"):
            return await handle_admin(self, request)
        self.requests += 1
        fault = self.faults.take_request_fault(path)
        if fault is not None:
            raise fault
        if path == "/version" or path == "/version/":
            return json_response(discovery.SERVER_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path.startswith("/openapi/"):
            raise errors.path_not_found(path)
        if path == RULES_REVIEW_PATH:
            if request.method != "POST":
                raise errors.method_not_allowed(request.method, path)
            token = bearer_token(request.headers.get("Authorization", ""))
            if request.content_type == PROTOBUF:
                question = review_from_protobuf(await request.read())
            else:
                question = await self._body(request)
            return json_response(self.rbac.review(token, question), status=201)
        found = parse_target(path)
        if isinstance(found, dict):
            if request.method != "GET":
                raise errors.method_not_allowed(request.method, path)
            if found.get("api") is True:
                return json_response(discovery.api_versions(self.server_address))
            return json_response(found)
        response = await self._resource(request, found)
        if self._record_prefix is not None and path.startswith(self._record_prefix):
            body = response.body if isinstance(response, web.Response) else None
            self.sent.append(
                SentResponse(
                    path=path,
                    accept=request.headers.get("Accept", ""),
                    status=response.status,
                    body=body if isinstance(body, bytes) else b"",
                )
            )
        return response

    async def _resource(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, method = target.rt, request.method
        if target.subresource == "log" and rt.qualified == "pods" and method == "GET":
            assert target.namespace is not None and target.name is not None
            pod = self.store.get(rt, target.namespace, target.name)
            return await serve_log(request, logs=self.logs, pod=pod, store=self.store)
        if target.subresource not in (None, "status"):
            raise errors.path_not_found(request.path)
        if target.name is None:
            if method == "GET":
                if parse_bool(request.query.get("watch")):
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST":
                obj = self._to_storage(rt, await self._body(request))
                created = self.store.create(self._storage_rt(rt), obj, namespace=target.namespace)
                return json_response(self._from_storage(rt, created), status=201)
            if method == "DELETE":
                return self._delete_collection(request, target)
            raise errors.method_not_allowed(method, request.path)
        namespace = target.namespace or ""
        if method == "GET":
            if parse_bool(request.query.get("watch")):
                raise errors.bad_request("watch on a single object: use fieldSelector=metadata.name=NAME")
            form, version = negotiate.negotiate(request.headers.get("Accept", ""), is_list=False)
            obj = self._from_storage(rt, self.store.get(self._storage_rt(rt), namespace, target.name))
            if form == "table":
                return json_response(tables.render(rt, [obj], self.store.resource_version, request.query))
            if form == "metadata":
                return json_response(negotiate.partial_object(obj, version=version))
            return json_response(obj)
        if method == "PUT":
            body = self._to_storage(rt, await self._body(request))
            if (body.get("metadata") or {}).get("name") not in (None, target.name):
                raise errors.bad_request("the name of the object does not match the name on the URL")
            body.setdefault("metadata", {})["name"] = target.name
            updated = self.store.update(self._storage_rt(rt), body, namespace=target.namespace)
            return json_response(self._from_storage(rt, updated))
        if method == "PATCH":
            content_type = request.content_type
            if content_type == "application/json-patch+json":
                raise errors.ApiError(
                    code=415, reason="UnsupportedMediaType", message="json-patch is not supported by the sim"
                )
            patch = await self._body(request)
            if rt.storage:
                patch = views.patch_to_storage(rt, patch)
            patched = self.store.patch(self._storage_rt(rt), namespace, target.name, patch)
            return json_response(self._from_storage(rt, patched))
        if method == "DELETE":
            deleted = self.store.delete(self._storage_rt(rt), namespace, target.name)
            return json_response(self._from_storage(rt, deleted))
        raise errors.method_not_allowed(method, request.path)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _storage_rt(rt: ResourceType) -> ResourceType:
        return views.storage_type(rt)

    @staticmethod
    def _to_storage(rt: ResourceType, obj: Obj) -> Obj:
        return views.to_storage(rt, obj)

    @staticmethod
    def _from_storage(rt: ResourceType, obj: Obj) -> Obj:
        return views.from_storage(rt, obj)

    @staticmethod
    async def _body(request: web.Request) -> Obj:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        return body

    def _matcher(self, request: web.Request, rt: ResourceType) -> Any:
        return combine(
            parse_label_selector(request.query.get("labelSelector")),
            parse_field_selector(request.query.get("fieldSelector"), rt),
        )

    def _list(self, request: web.Request, target: Target) -> web.Response:
        rt, query = target.rt, request.query
        form, version = negotiate.negotiate(request.headers.get("Accept", ""), is_list=True)
        matcher = self._matcher(request, rt)
        limit_raw = query.get("limit", "")
        try:
            limit = int(limit_raw) if limit_raw else 0
        except ValueError:
            raise errors.bad_request(f"invalid limit: {limit_raw!r}") from None
        token = query.get("continue", "")
        if token:
            snapshot_id, start, items, rv = self.store.resume(token)
        else:
            rv = self.store.resource_version
            items = [self._from_storage(rt, obj) for obj in self.store.objects(rt, target.namespace)]
            if matcher is not None:
                items = [obj for obj in items if matcher(obj)]
            start, snapshot_id = 0, 0
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        page = items[start:]
        if limit > 0 and len(page) > limit:
            page = page[:limit]
            if not snapshot_id:
                snapshot_id = self.store.snapshot(items)
            metadata["continue"] = self.store.continue_token(snapshot_id, start + limit)
            metadata["remainingItemCount"] = len(items) - start - limit
            self.faults.continue_token_issued()
        if form == "table":
            return json_response(tables.render(rt, page, rv, query, metadata=metadata))
        if form == "metadata":
            return json_response(negotiate.partial_list(page, metadata=metadata, version=version))
        strip = ("apiVersion", "kind")
        body = {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": metadata,
            "items": [{k: v for k, v in obj.items() if k not in strip} for obj in page],
        }
        return json_response(body)

    def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        rt = target.rt
        matcher = self._matcher(request, rt)
        deleted = []
        for obj in self.store.objects(self._storage_rt(rt), target.namespace):
            view = self._from_storage(rt, obj)
            if matcher is None or matcher(view):
                meta = obj["metadata"]
                gone = self.store.delete(self._storage_rt(rt), meta.get("namespace", ""), meta["name"])
                deleted.append(self._from_storage(rt, gone))
        body = {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": {}, "items": deleted}
        return json_response(body)

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        params = parse_watch_params(request.query, rt, target.namespace)
        present = None
        # NB: a watch streams single objects, so metadata-only is ``as=PartialObjectMetadata``.
        form, version = negotiate.negotiate(request.headers.get("Accept", ""), is_list=False)
        if form == "table":
            query = request.query

            def present(obj: Obj) -> Obj:
                return tables.render(rt, [obj], self.store.resource_version, query)

        elif form == "metadata":

            def present(obj: Obj) -> Obj:
                return negotiate.partial_object(obj, version=version)

        spec = WatchSpec(
            matcher=self._matcher(request, rt),
            view=(lambda obj: views.from_storage(rt, obj)) if rt.storage else None,
            present=present,
            **params,
        )
        stream = WatchStream(
            store=self.store, faults=self.faults, spec=spec, bookmark_interval=self.bookmark_interval
        )
        return await stream.serve(request)
