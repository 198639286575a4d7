"""Bearer-token auth for the API: a static token, or OAuth2 client credentials.

Client-credentials tokens are cached and renewed shortly before they expire (not
after a 401); concurrent callers share one renewal through a lock; an unexpected
401 costs one renewal and one replay. The token is only ever attached to requests
for the API's own origin, and neither it nor the client secret is ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass

import httpx

from pipeline.itwin.errors import AuthenticationError, ServiceUnavailableError
from pipeline.itwin.logs import REDACTOR
from pipeline.itwin.paging import origin_key
from pipeline.itwin.ratelimit import RateLimiter, parse_rate_hint
from pipeline.itwin.responses import UnreadableBody, decode_object
from pipeline.itwin.retry import backoff_delay, parse_retry_after
from pipeline.itwin.settings import Secret, Settings

logger = logging.getLogger("pipeline.itwin")

# Renew this long before expiry: a fifth of the lifetime, at most a minute.
_MAX_RENEW_MARGIN_S = 60.0
_DEFAULT_EXPIRES_IN_S = 3600.0


@dataclass(frozen=True)
class IssuedToken:
    """What the token endpoint gave: the token and its lifetime in seconds."""

    value: Secret
    lifetime_s: float


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when (on the auth's clock) to stop using it."""

    value: Secret
    renew_at: float


def _authorize(request: httpx.Request, token: Secret, api_origin: httpx.URL) -> None:
    """Attach the token only for the API's origin: defence in depth behind the pager."""
    if origin_key(request.url) == origin_key(api_origin):
        request.headers["Authorization"] = f"Bearer {token.reveal()}"
    else:
        request.headers.pop("Authorization", None)


class StaticTokenAuth(httpx.Auth):
    """A pre-issued bearer token; it cannot be renewed, so a 401 is final."""

    def __init__(self, token: Secret, *, api_origin: httpx.URL) -> None:
        self._token = token
        self._api_origin = api_origin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        _authorize(request, self._token, self._api_origin)
        yield request

    def __repr__(self) -> str:
        return "StaticTokenAuth(token=***)"


class ClientCredentialsAuth(httpx.Auth):
    """OAuth2 client credentials with a cached token shared by every request of a client."""

    def __init__(
        self,
        fetch_token: Callable[[], Awaitable[IssuedToken]],
        *,
        api_origin: httpx.URL,
    ) -> None:
        self._fetch_token = fetch_token
        self._api_origin = api_origin
        self._clock = time.monotonic  # tests replace it to move past a token's renewal
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> AccessToken:
        """The cached token, renewed first if it is close to expiry."""
        current = self._token
        if current is not None and self._clock() < current.renew_at:
            return current
        return await self.renew(stale=current)

    async def renew(self, *, stale: AccessToken | None) -> AccessToken:
        """Fetch a new token unless another caller already replaced ``stale``."""
        async with self._lock:
            current = self._token
            if current is not None and current is not stale and self._clock() < current.renew_at:
                return current
            requested_at = self._clock()  # the lifetime counts from before the request
            issued = await self._fetch_token()
            renew_at = requested_at + issued.lifetime_s - renew_margin(issued.lifetime_s)
            self._token = AccessToken(value=issued.value, renew_at=renew_at)
            return self._token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token()
        _authorize(request, token.value, self._api_origin)
        response = yield request
        if response.status_code != 401:
            return
        # The token was refused before we thought it expired (revoked, clock skew):
        # renew once and replay once; a second 401 goes back to the caller.
        logger.info(
            "401 for %s %s; renewing the token and replaying once", request.method, request.url
        )
        token = await self.renew(stale=token)
        _authorize(request, token.value, self._api_origin)
        yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ClientCredentialsAuth works with httpx.AsyncClient only")
        yield request  # pragma: no cover - makes this a generator

    def __repr__(self) -> str:
        return "ClientCredentialsAuth(token=***)"


def renew_margin(lifetime_s: float) -> float:
    """How long before expiry to renew: early enough to never send an expired token."""
    return min(_MAX_RENEW_MARGIN_S, max(lifetime_s, 0.0) / 5)


async def fetch_client_credentials_token(
    http: httpx.AsyncClient, settings: Settings, limiter: RateLimiter
) -> IssuedToken:
    """POST the client-credentials grant, retrying transient failures with backoff.

    Token requests do not use the API's budget, but they honour its shared pause: a
    429 here pauses every caller, and a wait longer than max_wait_s stops the client
    (the endpoint is then not asked again, by this caller or any other).
    """
    if not settings.client_id or not settings.client_secret:
        raise AuthenticationError(message="client id and client secret are both required")
    form = {
        "grant_type": "client_credentials",
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.reveal(),
        "scope": settings.scope,
    }
    attempt = 0
    while True:
        await limiter.wait_for_pause()
        failure, wait = await _try_token_request(http, settings, form)
        if isinstance(failure, IssuedToken):
            return failure
        if failure == "HTTP 429" and wait is not None:
            limiter.pause_for(wait)
            limiter.check()
        if attempt >= settings.max_retries:
            raise ServiceUnavailableError(
                message=f"token endpoint failed after {attempt + 1} attempts: {failure}",
                url=settings.token_url,
            )
        delay = wait or backoff_delay(
            attempt, base_s=settings.backoff_base_s, cap_s=settings.backoff_cap_s
        )
        logger.warning(
            "token request failed (%s); retrying in %.2fs (attempt %d of %d)",
            failure,
            delay,
            attempt + 1,
            settings.max_retries,
        )
        await asyncio.sleep(delay)
        attempt += 1


async def _try_token_request(
    http: httpx.AsyncClient,
    settings: Settings,
    form: dict[str, str],
) -> tuple[IssuedToken | str, float | None]:
    """One token request: the token, or a retryable failure text and a server-given wait."""
    try:
        response = await http.post(
            settings.token_url, data=form, headers={"Accept": "application/json"}
        )
    except httpx.TransportError as exc:
        return f"{type(exc).__name__}", None
    if response.status_code == 429:
        return "HTTP 429", parse_rate_hint(response.headers).wait_s
    if response.status_code >= 500:
        return f"HTTP {response.status_code}", parse_retry_after(
            response.headers.get("Retry-After")
        )
    if response.status_code != 200:
        raise _token_refused(response, settings)
    try:
        body = decode_object(response.content)
    except UnreadableBody as exc:
        return str(exc), None
    return _token_from_body(body, settings)


def _token_from_body(
    body: dict[str, object], settings: Settings
) -> tuple[IssuedToken | str, float | None]:
    value = body.get("access_token")
    if not isinstance(value, str) or not value:
        return "token answer has no access_token", None
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise AuthenticationError(
            message="the token endpoint issued a token with whitespace or control characters",
            url=settings.token_url,
        )
    REDACTOR.register(value)
    raw_expires = body.get("expires_in", _DEFAULT_EXPIRES_IN_S)
    try:
        lifetime = float(raw_expires)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        lifetime = _DEFAULT_EXPIRES_IN_S
    logger.debug("obtained a token valid for %.0fs from %s", lifetime, settings.token_url)
    return IssuedToken(value=Secret(value), lifetime_s=lifetime), None


def _token_refused(response: httpx.Response, settings: Settings) -> AuthenticationError:
    """The token endpoint said no (bad client, bad scope): final, and says which."""
    try:
        body = decode_object(response.content)
    except UnreadableBody:
        body = {}
    code = body.get("error")
    description = body.get("error_description")
    text = description if isinstance(description, str) and description else "request refused"
    return AuthenticationError(
        message=f"token endpoint refused client {settings.client_id!r}: {text}",
        status=response.status_code,
        code=code if isinstance(code, str) else None,
        url=settings.token_url,
    )
