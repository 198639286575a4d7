"""Client behaviour over httpx.MockTransport: auth, retries, typed errors, no redirects.

The simulator tests cover the same over real HTTP; these pin down the cases that are
awkward to provoke there (exact header values, token endpoint answers, redirects).
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from pipeline.errors import ConfigError
from pipeline.itwin.auth import ClientCredentialsAuth
from pipeline.itwin.client import CallStats, ExportApiClient
from pipeline.itwin.errors import (
    ApiError,
    AuthenticationError,
    InvalidIdError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from pipeline.itwin.settings import ACCEPT_HEADER, Settings
from tests.itwin.conftest import (
    CANARY_SECRET,
    CANARY_TOKEN,
    FIXTURES,
    MockApi,
    fast_settings,
    load_fixture,
    oauth_settings,
    token_answer,
)

RUN = load_fixture("get-run-200.json")


def _run_ok(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/connect/token":
        return token_answer()
    return httpx.Response(200, json=RUN)


@pytest.mark.anyio
async def test_every_request_sends_accept_and_bearer_token() -> None:
    api = MockApi(_run_ok)
    async with ExportApiClient(fast_settings(), transport=api.transport) as client:
        run, fetched_at = await client.get_run("c1", "r1")
    assert run["id"] == RUN["run"]["id"] and fetched_at.tzinfo is not None
    (request,) = api.requests
    assert request.headers["Accept"] == ACCEPT_HEADER
    assert request.headers["Authorization"] == f"Bearer {CANARY_TOKEN}"
    assert request.url.path == "/export/connections/c1/runs/r1"


@pytest.mark.anyio
async def test_a_base_url_prefix_is_kept() -> None:
    api = MockApi(_run_ok)
    settings = fast_settings(base_url="https://api.test/gateway")
    async with ExportApiClient(settings, transport=api.transport) as client:
        await client.get_run("c1", "r:1")
    assert api.requests[0].url.raw_path == b"/gateway/export/connections/c1/runs/r%3A1"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda c: c.get_run("c1", "../x"), "run_id"),
        (lambda c: c.get_run("a/b", "r1"), "connection_id"),
        (lambda c: c.get_connection(""), "connection_id"),
    ],
)
async def test_invalid_ids_send_nothing(call: object, parameter: str) -> None:
    api = MockApi(_run_ok)
    async with ExportApiClient(fast_settings(), transport=api.transport) as client:
        with pytest.raises(InvalidIdError) as info:
            await call(client)  # type: ignore[operator]
        with pytest.raises(InvalidIdError):
            client.list_runs("a?b")
        with pytest.raises(InvalidIdError):
            client.list_connections("x y")
    assert info.value.parameter == parameter
    assert api.requests == []


def test_no_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        ExportApiClient(Settings(base_url="https://api.test"))


def test_a_bad_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        ExportApiClient(fast_settings(base_url="ftp://api.test"))


@pytest.mark.anyio
async def test_redirects_are_not_followed_and_name_the_origin() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "elsewhere.test":
            return httpx.Response(200, json=RUN)
        return httpx.Response(302, headers={"Location": "https://elsewhere.test:8443/steal"})

    api = MockApi(handler)
    async with ExportApiClient(fast_settings(), transport=api.transport) as client:
        with pytest.raises(ApiError) as info:
            await client.get_run("c1", "r1")
    assert "https://elsewhere.test:8443" in str(info.value)
    assert info.value.connection_id == "c1" and info.value.status == 302
    assert [r.url.host for r in api.requests] == ["api.test"]


@pytest.mark.anyio
async def test_429_waits_for_retry_after_then_succeeds() -> None:
    answers = iter(
        [httpx.Response(429, headers={"Retry-After": "0.05"}), httpx.Response(200, json=RUN)]
    )
    api = MockApi(lambda r: next(answers))
    stats = CallStats()
    async with ExportApiClient(fast_settings(), transport=api.transport) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.get_run("c1", "r1", stats=stats)
        assert loop.time() - started >= 0.04
        assert client.totals == stats
    assert stats == CallStats(requests=2, retries=1, throttled=1, pages=0)


@pytest.mark.anyio
async def test_persistent_429_is_a_rate_limited_error() -> None:
    body = (FIXTURES / "error-429.json").read_bytes()
    api = MockApi(lambda r: httpx.Response(429, content=body, headers={"Retry-After": "garbage"}))
    async with ExportApiClient(fast_settings(max_retries=2), transport=api.transport) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get_run("c1", "r1")
    assert info.value.code == "TooManyRequests" and info.value.connection_id == "c1"
    assert len(api.requests) == 3


@pytest.mark.anyio
@pytest.mark.parametrize(
    "bad",
    [
        httpx.Response(503),
        httpx.Response(200, content=b'{"run": {"id": '),
        httpx.Response(
            200, content=b"<html>maintenance</html>", headers={"Content-Type": "text/html"}
        ),
    ],
)
async def test_transient_failures_are_retried(bad: httpx.Response) -> None:
    answers = iter([bad, httpx.Response(200, json=RUN)])
    api = MockApi(lambda r: next(answers))
    async with ExportApiClient(fast_settings(), transport=api.transport) as client:
        run, _ = await client.get_run("c1", "r1")
    assert run["id"] == RUN["run"]["id"] and len(api.requests) == 2


@pytest.mark.anyio
async def test_connection_errors_are_retried_then_reported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    api = MockApi(handler)
    async with ExportApiClient(fast_settings(max_retries=2), transport=api.transport) as client:
        with pytest.raises(ServiceUnavailableError) as info:
            await client.get_connection("c1")
    assert info.value.connection_id == "c1" and "3 attempts" in str(info.value)


@pytest.mark.anyio
async def test_403_is_not_retried() -> None:
    body = (FIXTURES / "error-403.json").read_bytes()
    api = MockApi(lambda r: httpx.Response(403, content=body))
    async with ExportApiClient(fast_settings(), transport=api.transport) as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.get_connection("c1")
    assert len(api.requests) == 1 and info.value.code == "InsufficientPermissions"


@pytest.mark.anyio
async def test_ten_concurrent_callers_share_one_token_request() -> None:
    api = MockApi(_run_ok)
    async with ExportApiClient(oauth_settings(), transport=api.transport) as client:
        await asyncio.gather(*(client.get_run("c1", f"r{i}") for i in range(10)))
    assert len(api.token_requests()) == 1
    form = api.token_requests()[0].content.decode()
    assert "grant_type=client_credentials" in form and "scope=itwin-platform" in form


@pytest.mark.anyio
async def test_an_unexpected_401_renews_once_and_replays() -> None:
    tokens = iter(["old-token", "new-token"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            return token_answer(next(tokens))
        if request.headers["Authorization"] == "Bearer old-token":
            return httpx.Response(401)
        return httpx.Response(200, json=RUN)

    api = MockApi(handler)
    async with ExportApiClient(oauth_settings(), transport=api.transport) as client:
        await client.get_run("c1", "r1")
    assert len(api.token_requests()) == 2 and len(api.api_requests()) == 2


@pytest.mark.anyio
async def test_a_second_401_is_an_authentication_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            return token_answer()
        return httpx.Response(401, content=(FIXTURES / "error-401.json").read_bytes())

    api = MockApi(handler)
    async with ExportApiClient(oauth_settings(), transport=api.transport) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_run("c1", "r1")
    assert info.value.code == "HeaderNotFound" and info.value.connection_id == "c1"
    assert len(api.token_requests()) == 2 and len(api.api_requests()) == 2


@pytest.mark.anyio
async def test_tokens_are_renewed_before_expiry() -> None:
    api = MockApi(
        lambda r: (
            token_answer(expires_in=3600)
            if r.url.path == "/connect/token"
            else httpx.Response(200, json=RUN)
        )
    )
    now = [0.0]
    async with ExportApiClient(oauth_settings(), transport=api.transport) as client:
        auth = client.auth
        assert isinstance(auth, ClientCredentialsAuth)
        auth._clock = lambda: now[0]
        await client.get_run("c1", "r1")
        now[0] = 3550.0  # inside the last minute: renew before use, not after a 401
        await client.get_run("c1", "r1")
        now[0] = 3580.0
        await client.get_run("c1", "r1")
    assert len(api.token_requests()) == 2 and len(api.api_requests()) == 3


@pytest.mark.anyio
async def test_token_endpoint_outage_is_retried() -> None:
    answers = iter([httpx.Response(503), httpx.Response(503), token_answer()])

    def handler(request: httpx.Request) -> httpx.Response:
        return (
            next(answers) if request.url.path == "/connect/token" else httpx.Response(200, json=RUN)
        )

    api = MockApi(handler)
    async with ExportApiClient(oauth_settings(), transport=api.transport) as client:
        await client.get_run("c1", "r1")
    assert len(api.token_requests()) == 3


@pytest.mark.anyio
async def test_refused_client_credentials_are_final_and_secret_free() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": "invalid_client", "error_description": "bad client"}
        )

    api = MockApi(handler)
    async with ExportApiClient(oauth_settings(), transport=api.transport) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_run("c1", "r1")
    assert info.value.code == "invalid_client" and len(api.requests) == 1
    assert CANARY_SECRET not in str(info.value) and CANARY_SECRET not in repr(info.value)


@pytest.mark.anyio
async def test_secrets_never_reach_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    answers = iter([httpx.Response(503), httpx.Response(401)])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            return token_answer()
        return next(answers, httpx.Response(500))

    caplog.set_level(logging.DEBUG)
    api = MockApi(handler)
    settings = oauth_settings(max_retries=1)
    async with ExportApiClient(settings, transport=api.transport) as client:
        with pytest.raises(ApiError) as info:
            await client.get_run("c1", "r1")
        texts = [caplog.text, str(info.value), repr(info.value), repr(client), repr(client.auth)]
        texts += [repr(settings), str(settings)]
    assert any("retry" in t for t in texts)  # something was logged
    for text in texts:
        assert CANARY_TOKEN not in text and CANARY_SECRET not in text
