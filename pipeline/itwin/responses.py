"""Turning HTTP answers into JSON bodies or typed errors, defensively.

The API's error body (``{"error": {code, message, details}}``) is not guaranteed,
nor are its fields non-null, so every field is optional here and a missing body
still yields a useful message built from the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from pipeline.itwin.errors import (
    ApiError,
    AuthenticationError,
    ErrorDetail,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from pipeline.itwin.page_parsing import UnreadableBody, decode_object

__all__ = ["UnreadableBody", "decode_object", "error_class", "error_from_response"]

_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def error_class(status: int) -> type[ApiError]:
    """The exception type users see for a final status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServiceUnavailableError
    return ApiError


def error_from_response(
    response: httpx.Response, *, connection_id: str | None, note: str = ""
) -> ApiError:
    """A typed error from a final failed answer, with the API's code, message and details."""
    fields = _error_fields(response.content)
    message = fields.get("message") or response.reason_phrase or "request failed"
    if note:
        message = f"{message} ({note})"
    return error_class(response.status_code)(
        message=message,
        status=response.status_code,
        code=fields.get("code"),
        target=fields.get("target"),
        details=_details(fields.get("details")),
        connection_id=connection_id,
        url=str(response.request.url),
    )


def _error_fields(content: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return {}
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return {}
    out: dict[str, Any] = {k: _str_or_none(error.get(k)) for k in ("code", "message", "target")}
    out["details"] = error.get("details")
    return out


def _details(raw: Any) -> tuple[ErrorDetail, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        ErrorDetail(
            code=_str_or_none(d.get("code")),
            message=_str_or_none(d.get("message")),
            target=_str_or_none(d.get("target")),
        )
        for d in raw
        if isinstance(d, Mapping)
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
