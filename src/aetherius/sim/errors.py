"""``kind: Status`` errors, worded like the real API server's so clients parse them the same way."""

from __future__ import annotations

from typing import Any

from aetherius.sim.resources import ResourceType


class ApiError(Exception):
    """An API failure that becomes a ``Status`` body with the given HTTP code."""

    def __init__(
        self,
        *,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        return status_body(code=self.code, reason=self.reason, message=self.message, details=self.details)


def status_body(
    *, code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = details
    body["code"] = code
    return body


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        code=404, reason="NotFound", message=f'{rt.qualified} "{name}" not found', details=_details(rt, name)
    )


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        code=409,
        reason="AlreadyExists",
        message=f'{rt.qualified} "{name}" already exists',
        details=_details(rt, name),
    )


def conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        code=409,
        reason="Conflict",
        message=(
            f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        ),
        details=_details(rt, name),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(code=400, reason="BadRequest", message=message)


def invalid(rt: ResourceType, name: str, message: str) -> ApiError:
    return ApiError(
        code=422,
        reason="Invalid",
        message=f'{rt.kind} "{name}" is invalid: {message}',
        details=_details(rt, name),
    )


def gone(message: str) -> ApiError:
    return ApiError(code=410, reason="Expired", message=message)


def too_old(requested: int, oldest: int) -> ApiError:
    return gone(f"too old resource version: {requested} ({oldest})")


def expired_continue() -> ApiError:
    return gone(
        "The provided continue parameter is too old to display a consistent list result. You can start "
        "a new list without the continue parameter, or use the continue token in this response to "
        "retrieve the remainder of the results. Continuing with the provided token results in an "
        "inconsistent list - objects that were created, modified, or deleted between the time the first "
        "chunk was returned and now may show up in the list."
    )


def method_not_allowed(method: str, path: str) -> ApiError:
    return ApiError(
        code=405,
        reason="MethodNotAllowed",
        message=f"the server does not allow this method on the requested resource ({method} {path})",
    )


def path_not_found(path: str) -> ApiError:
    return ApiError(code=404, reason="NotFound", message="the server could not find the requested resource")


def too_many_requests(retry_after: float) -> ApiError:
    seconds = max(1, round(retry_after))
    return ApiError(
        code=429,
        reason="TooManyRequests",
        message="Too many requests, please try again later.",
        details={"retryAfterSeconds": seconds},
        headers={"Retry-After": str(seconds)},
    )


def internal_error(code: int, message: str) -> ApiError:
    reason = {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}.get(code, "InternalError")
    return ApiError(code=code, reason=reason, message=f"Internal error occurred: {message}")
