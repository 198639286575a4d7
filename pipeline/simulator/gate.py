"""Who may reach the Export API routes: the token endpoint, bearer checks and rate limits."""

from __future__ import annotations

import math

from pipeline.simulator import responses as r
from pipeline.simulator.asgi import Receive, Scope, read_body
from pipeline.simulator.auth import TokenStore
from pipeline.simulator.config import Faults
from pipeline.simulator.faults import (
    PLATFORM_WAIT_HEADER,
    RateLimiter,
    rate_limit_headers,
    retry_after_header,
)


def throttled(faults: Faults, limit: float, wait: float) -> r.Reply:
    """A 429 with the gateway's rate-limit headers and the configured form of Retry-After."""
    headers = rate_limit_headers(limit, 0, wait)
    headers.append((PLATFORM_WAIT_HEADER, str(max(1, math.ceil(wait))).encode()))
    value = retry_after_header(faults.retry_after, wait)
    if value is not None:
        headers.append((b"retry-after", value.encode("latin-1")))
    return r.too_many_requests(headers)


class Gatekeeper:
    """Issues tokens and decides whether an API call passes auth and the rate limits."""

    def __init__(self, faults: Faults, tokens: TokenStore) -> None:
        self.faults = faults
        self.tokens = tokens
        self._limiter = RateLimiter()
        self._hourly_limiter = RateLimiter()

    async def token(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> r.Reply:
        """Answer the token endpoint, or its configured failures."""
        if scope["method"] != "POST":
            return r.method_not_allowed()
        body = await read_body(receive)
        if self.faults.token_endpoint_failures > 0:
            self.faults.token_endpoint_failures -= 1
            return r.server_error(503)
        if self.faults.token_endpoint_throttled_s is not None:
            return throttled(self.faults, 1, self.faults.token_endpoint_throttled_s)
        status, payload = self.tokens.issue(body, headers.get("authorization"))
        return r.json_reply(status, payload, [(b"cache-control", b"no-store")])

    def authorize_and_limit(
        self, headers: dict[str, str], limit_headers: list[tuple[bytes, bytes]]
    ) -> r.Reply | None:
        """A 401 or 429 answer, or None; fills `limit_headers` for answers that pass the limit."""
        auth = headers.get("authorization")
        if auth is None:
            return r.missing_header()
        scheme, _, token = auth.partition(" ")
        client = self.tokens.client_of(token.strip()) if scheme.lower() == "bearer" else None
        if client is None:
            return r.invalid_token()
        per_hour = self.faults.rate_limit_per_hour
        if per_hour is not None:
            allowed, _, wait = self._hourly_limiter.check(client, per_hour / 60.0, 3600.0)
            if not allowed:
                return throttled(self.faults, per_hour, wait)
        limit = self.faults.rate_limit_per_minute
        if limit is None:
            return None
        allowed, remaining, wait = self._limiter.check(
            client, limit, self.faults.rate_limit_window_s
        )
        if allowed:
            limit_headers.extend(rate_limit_headers(limit, remaining, wait))
            return None
        return throttled(self.faults, limit, wait)
