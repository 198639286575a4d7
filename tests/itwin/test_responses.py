"""The published error bodies become typed errors carrying code, message and details."""

from __future__ import annotations

import httpx
import pytest

from pipeline.itwin.errors import (
    ApiError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from pipeline.itwin.responses import UnreadableBody, decode_object, error_from_response
from tests.itwin.conftest import FIXTURES, load_fixture


def _response(status: int, content: bytes) -> httpx.Response:
    request = httpx.Request("GET", "https://api.bentley.com/export/connections/c1/runs")
    return httpx.Response(status, content=content, request=request)


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (401, AuthenticationError, "HeaderNotFound"),
        (403, PermissionDeniedError, "InsufficientPermissions"),
        (404, NotFoundError, "ConnectionRunNotFound"),
        (422, InvalidRequestError, "InvalidConnectionRunRequest"),
        (429, RateLimitedError, "TooManyRequests"),
    ],
)
def test_published_error_bodies(status: int, kind: type[ApiError], code: str) -> None:
    content = (FIXTURES / f"error-{status}.json").read_bytes()
    error = error_from_response(_response(status, content), connection_id="c1")
    assert type(error) is kind
    assert error.status == status and error.code == code and error.connection_id == "c1"
    assert error.message == load_fixture(f"error-{status}.json")["error"]["message"]
    assert f"HTTP {status}" in str(error) and "c1" in str(error)


def test_details_and_targets_are_kept() -> None:
    content = (FIXTURES / "error-422.json").read_bytes()
    error = error_from_response(_response(422, content), connection_id=None)
    assert [d.target for d in error.details] == ["imodelId", "imodelId", "connectionId"]
    assert error.details[0].code == "MissingRequiredParameter"


@pytest.mark.parametrize(
    "content",
    [b"", b"<html>oops</html>", b'{"error": null}', b'{"error": {"code": null, "message": 5}}'],
)
def test_missing_or_odd_error_bodies_still_give_an_error(content: bytes) -> None:
    error = error_from_response(_response(503, content), connection_id="c9")
    assert isinstance(error, ServiceUnavailableError)
    assert error.code is None and error.message == "Service Unavailable"


@pytest.mark.parametrize("content", [b'{"runs": [', b"<html></html>", b"[1, 2]", b""])
def test_unreadable_success_bodies(content: bytes) -> None:
    with pytest.raises(UnreadableBody):
        decode_object(content)


def test_published_success_bodies_decode() -> None:
    for name in ("list-runs-200.json", "get-run-200.json", "get-connection-200.json"):
        assert isinstance(decode_object((FIXTURES / name).read_bytes()), dict)
