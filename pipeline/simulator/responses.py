"""Bodies of the service's answers: the published error shapes and the list envelopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

JSON_TYPE = b"application/json; charset=utf-8"
HTML_TYPE = b"text/html; charset=utf-8"


@dataclass
class Reply:
    """An HTTP answer before faults are applied to its delivery."""

    status: int
    body: bytes
    content_type: bytes = JSON_TYPE
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_reply(
    status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> Reply:
    return Reply(status, orjson.dumps(payload), JSON_TYPE, headers or [])


def error_reply(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, str]] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Reply:
    """`{"error": {"code", "message", "details"?}}` as the Export API publishes it."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return json_reply(status, {"error": error}, headers)


def missing_header() -> Reply:
    return error_reply(
        401,
        "HeaderNotFound",
        "Header Authorization was not found in the request. Access denied.",
        headers=[(b"www-authenticate", b"Bearer")],
    )


def invalid_token() -> Reply:
    return error_reply(
        401,
        "InvalidToken",
        "Access token is invalid or has expired. Access denied.",
        headers=[(b"www-authenticate", b'Bearer error="invalid_token"')],
    )


def forbidden() -> Reply:
    return error_reply(
        403,
        "InsufficientPermissions",
        "The user has insufficient permissions for the requested operation.",
    )


def connection_not_found() -> Reply:
    return error_reply(
        404, "ExportConnectionNotFound", "Requested Export Connection is not available."
    )


def run_not_found() -> Reply:
    return error_reply(404, "ConnectionRunNotFound", "Requested Connection Run is not available.")


def imodel_not_found() -> Reply:
    return error_reply(404, "iModelNotFound", "Requested iModel is not available.")


def route_not_found() -> Reply:
    return error_reply(404, "ResourceNotFound", "The requested resource was not found.")


def method_not_allowed() -> Reply:
    return error_reply(405, "MethodNotAllowed", "The HTTP method is not allowed here.")


def invalid_request(code: str, *details: tuple[str, str, str]) -> Reply:
    """422 with details of (code, message, target), like the published example."""
    return error_reply(
        422,
        code,
        "Cannot perform operation.",
        [{"code": c, "message": m, "target": t} for c, m, t in details],
    )


def too_many_requests(headers: list[tuple[bytes, bytes]]) -> Reply:
    return error_reply(
        429,
        "TooManyRequests",
        "More requests were received than the subscription rate-limit allows.",
        headers=headers,
    )


def server_error(status: int) -> Reply:
    """Gateways answer 5xx in many shapes; clients must not expect the JSON error body."""
    if status == 500:
        return error_reply(500, "InternalServerError", "An unexpected error occurred.")
    if status == 502:
        return Reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", HTML_TYPE)
    if status == 503:
        return Reply(503, b"Service Unavailable", b"text/plain")
    return Reply(status, b"", JSON_TYPE)


HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
    b"<body><h1>The service is temporarily unavailable.</h1>"
    b"<p>Please try again later. Reference: sim-gw-5f2c</p></body></html>"
)


def runs_page(runs: list[bytes], links: dict[str, Any]) -> bytes:
    """A list page assembled from pre-serialized runs, without re-encoding them."""
    return b'{"runs":[' + b",".join(runs) + b'],"_links":' + orjson.dumps(links) + b"}"
